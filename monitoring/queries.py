"""Reading stored metrics: the metric names and the figures alert rules evaluate."""

from datetime import timedelta

from django.db.models import Avg
from django.utils import timezone

from .models import Sample

# The per-container metrics, in display order; each is a field of Sample and Rollup.
METRICS = (
    "cpu_percent",  # % of one core (200 = two cores busy), as docker stats
    "cpu_throttled_percent",  # % of CFS periods throttled
    "mem_bytes",  # working set: usage - inactive file cache
    "mem_usage_bytes",
    "mem_limit_bytes",  # absent when the container has no limit
    "mem_percent",  # working set / limit
    "net_rx_bps",  # bytes per second
    "net_tx_bps",
    "blk_read_bps",
    "blk_write_bps",
    "pids",
)


def window_average(container_ids, metric, seconds, now=None):
    """{container_id: average of `metric` over raw samples in (now - seconds, now]}.

    Containers with no sample (or only null values) in the window are absent.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    now = now or timezone.now()
    rows = (
        Sample.objects.filter(
            container_id__in=list(container_ids),
            at__gt=now - timedelta(seconds=seconds),
            at__lte=now,
            **{f"{metric}__isnull": False},
        )
        .values("container_id")
        .annotate(value=Avg(metric))
        .order_by()
    )
    return {row["container_id"]: float(row["value"]) for row in rows}
