"""Series for the charts: raw samples, 5-minute or hourly rollups, chosen by range.

A range is served from the coarsest kind that suits it, and its newest end, not yet
rolled up, from the finer kinds: a 24 h chart is 5-minute rows up to the last
closed bucket, then raw samples to now.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .models import HostSample, Rollup, Sample
from .queries import METRICS

RAW = 0
# range → (seconds, kinds from coarse to fine: 0 = raw, else the rollup period)
RANGES = {
    "1h": (3600, (RAW,)),
    "24h": (86400, (Rollup.FIVE_MINUTES, RAW)),
    "7d": (7 * 86400, (Rollup.FIVE_MINUTES, RAW)),
    "30d": (30 * 86400, (Rollup.HOUR, Rollup.FIVE_MINUTES, RAW)),
}
DEFAULT_RANGE = "1h"
HOST_SERIES = (
    "cpu_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "load1",
    "load5",
    "load15",
    "disk_used_bytes",
    "disk_total_bytes",
    "containers",
)


def _round(value):
    return round(value, 2) if isinstance(value, float) else value


def _collect(rows_for, fields, seconds, kinds, now):
    """Rows of each kind in turn, each kind taking over where the coarser one ended."""
    out = {"t": [], **{f: [] for f in fields}}
    cursor = now - timedelta(seconds=seconds)
    for kind in kinds:
        last = None
        for row in rows_for(kind, cursor):
            out["t"].append(int(row["at"].timestamp()))
            for f in fields:
                out[f].append(_round(row[f]))
            last = row["at"]
        if last is not None:
            cursor = last + timedelta(seconds=kind or 1)
    return out


def container_series(container, range_name, now=None):
    """{"t": [...], metric: [...], ...} of one container over `range_name`."""
    seconds, kinds = RANGES[range_name]
    now = now or timezone.now()

    def rows_for(kind, since):
        if kind == RAW:
            rows = Sample.objects.filter(container=container, at__gte=since)
        else:
            rows = Rollup.objects.filter(container=container, period=kind, at__gte=since)
        return rows.order_by("at").values("at", *METRICS)

    series = _collect(rows_for, METRICS, seconds, kinds, now)
    series["range"] = range_name
    series["step"] = kinds[0] or None
    return series


def host_series(host, range_name, now=None):
    seconds, kinds = RANGES[range_name]
    now = now or timezone.now()

    def rows_for(kind, since):
        rows = HostSample.objects.filter(host=host, period=kind, at__gte=since)
        return rows.order_by("at").values("at", *HOST_SERIES)

    series = _collect(rows_for, HOST_SERIES, seconds, kinds, now)
    series["range"] = range_name
    return series


def latest_sweep(host):
    """The time of the host's newest stored sweep, or None."""
    row = HostSample.objects.filter(host=host, period=RAW).order_by("-at").values("at").first()
    return row["at"] if row else None


def top_containers(containers, host, metric, limit=5):
    """The `limit` containers (of the given queryset) highest in `metric` at the last sweep."""
    at = latest_sweep(host)
    if at is None:
        return []
    rows = (
        Sample.objects.filter(host=host, at=at, container__in=containers)
        .exclude(**{f"{metric}__isnull": True})
        .select_related("container")
        .order_by(f"-{metric}")[:limit]
    )
    return list(rows)
