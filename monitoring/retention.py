"""Rollups and pruning: the database stays bounded however long the collector runs.

Raw samples → 5-minute rollups (average and max) → hourly rollups, each bucket
computed once it is closed and written with an upsert, so running `rollup()` twice,
or after a crash halfway, gives the same rows. The newest bucket of each kind is
computed again on every run (a late sweep lands in it). `prune()` deletes past the
retention of each kind, never raw samples not yet rolled up, in batches so no
transaction holds the tables long.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, Max, Min
from django.utils import timezone

from .models import HostSample, Rollup, Sample
from .queries import METRICS

FIVE, HOUR = Rollup.FIVE_MINUTES, Rollup.HOUR
# A sweep's rows carry its start time and are stored a moment later: a bucket is
# closed this long after its end.
GRACE = timedelta(seconds=60)
# At most this many buckets per kind and run, so a long outage is caught up over a
# few runs instead of one long one.
MAX_BUCKETS = 288
DELETE_BATCH = 20_000
INT_FIELDS = {"mem_bytes", "mem_usage_bytes", "mem_limit_bytes", "pids"}
HOST_FIELDS = (
    "cpu_percent",
    "ncpu",
    "mem_used_bytes",
    "mem_total_bytes",
    "load1",
    "load5",
    "load15",
    "disk_used_bytes",
    "disk_total_bytes",
)
HOST_INT_FIELDS = {
    "ncpu",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
}


def floor(moment, period):
    seconds = int(moment.timestamp()) // period * period
    return datetime.fromtimestamp(seconds, UTC)


def _value(name, value, ints):
    if value is None:
        return None
    return round(value) if name in ints else float(value)


def _buckets(first, closed_end, period):
    """Bucket starts from `first` while the bucket ends by `closed_end` (at most MAX_BUCKETS)."""
    start = floor(first, period)
    step = timedelta(seconds=period)
    out = []
    while start + step <= closed_end and len(out) < MAX_BUCKETS:
        out.append(start)
        start += step
    return out


def _start(model, period, source):
    """Where this kind's rollups resume: the first source row from its newest bucket on.

    The newest bucket is done again (a late sweep may have landed in it); a gap with
    no rows at all (the collector was off for days) is skipped, not walked.
    """
    newest = model.objects.filter(period=period).aggregate(at=Max("at"))["at"]
    if newest is not None:
        source = source.filter(at__gte=newest)
    return source.aggregate(at=Min("at"))["at"]


def rollup(now=None):
    """Roll raw samples into 5-minute rows and those into hourly rows; returns rows written."""
    now = now or timezone.now()
    written = 0
    closed_5m = floor(now - GRACE, FIVE)
    start = _start(Rollup, FIVE, Sample.objects.all())
    if start is not None:
        for bucket in _buckets(start, closed_5m, FIVE):
            written += _rollup_raw_bucket(bucket)
    start = _start(Rollup, HOUR, Rollup.objects.filter(period=FIVE))
    if start is not None:
        for bucket in _buckets(start, floor(closed_5m, HOUR), HOUR):
            written += _rollup_hour_bucket(bucket)
    written += _rollup_hosts(closed_5m)
    return written


def _rollup_raw_bucket(bucket):
    end = bucket + timedelta(seconds=FIVE)
    aggregates = {"count": Count("id")}
    for name in METRICS:
        aggregates[name] = Avg(name)
        aggregates[f"{name}_max"] = Max(name)
    rows = (
        Sample.objects.filter(at__gte=bucket, at__lt=end)
        .values("container_id", "host_id")
        .annotate(**aggregates)
        .order_by()
    )
    objects = []
    for row in rows:
        values = {
            name: _value(name.removesuffix("_max"), row[name], INT_FIELDS)
            for name in (*METRICS, *(f"{m}_max" for m in METRICS))
        }
        objects.append(
            Rollup(
                container_id=row["container_id"],
                host_id=row["host_id"],
                period=FIVE,
                at=bucket,
                count=row["count"],
                **values,
            )
        )
    return _upsert(objects)


def _rollup_hour_bucket(bucket):
    end = bucket + timedelta(seconds=HOUR)
    rows = Rollup.objects.filter(period=FIVE, at__gte=bucket, at__lt=end).values(
        "container_id", "host_id", "count", *METRICS, *(f"{m}_max" for m in METRICS)
    )
    grouped = defaultdict(list)
    for row in rows:
        grouped[(row["container_id"], row["host_id"])].append(row)
    objects = []
    for (container_id, host_id), parts in grouped.items():
        values = {}
        for name in METRICS:
            weighted = [(r[name], r["count"] or 1) for r in parts if r[name] is not None]
            weight = sum(w for _, w in weighted)
            values[name] = _value(
                name, sum(v * w for v, w in weighted) / weight if weight else None, INT_FIELDS
            )
            maxima = [r[f"{name}_max"] for r in parts if r[f"{name}_max"] is not None]
            values[f"{name}_max"] = max(maxima) if maxima else None
        objects.append(
            Rollup(
                container_id=container_id,
                host_id=host_id,
                period=HOUR,
                at=bucket,
                count=sum(r["count"] for r in parts),
                **values,
            )
        )
    return _upsert(objects)


def _upsert(objects):
    if not objects:
        return 0
    Rollup.objects.bulk_create(
        objects,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["container", "period", "at"],
        update_fields=[
            "host",
            "count",
            *METRICS,
            *(f"{m}_max" for m in METRICS),
        ],
    )
    return len(objects)


def _rollup_hosts(closed_5m):
    """Host totals: raw → 5 minutes → hourly, averages (the host page's long ranges)."""
    written = 0
    for period, source_period, closed in (
        (FIVE, HostSample.RAW, closed_5m),
        (HOUR, FIVE, floor(closed_5m, HOUR)),
    ):
        start = _start(HostSample, period, HostSample.objects.filter(period=source_period))
        if start is None:
            continue
        for bucket in _buckets(start, closed, period):
            end = bucket + timedelta(seconds=period)
            rows = (
                HostSample.objects.filter(period=source_period, at__gte=bucket, at__lt=end)
                .values("host_id")
                .annotate(containers_avg=Avg("containers"), **{f: Avg(f) for f in HOST_FIELDS})
                .order_by()
            )
            objects = [
                HostSample(
                    host_id=row["host_id"],
                    period=period,
                    at=bucket,
                    containers=round(row["containers_avg"] or 0),
                    **{f: _value(f, row[f], HOST_INT_FIELDS) for f in HOST_FIELDS},
                )
                for row in rows
            ]
            if objects:
                HostSample.objects.bulk_create(
                    objects,
                    update_conflicts=True,
                    unique_fields=["host", "period", "at"],
                    update_fields=["containers", *HOST_FIELDS],
                )
                written += len(objects)
    return written


def prune(now=None):
    """Delete what is past its retention; returns the number of rows deleted."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(hours=settings.METRICS_RAW_HOURS)
    five_cutoff = now - timedelta(days=settings.METRICS_5M_DAYS)
    hour_cutoff = now - timedelta(days=settings.METRICS_1H_DAYS)
    # Never past what has been rolled up: the newest bucket of the next kind.
    rolled_5m = Rollup.objects.filter(period=FIVE).aggregate(at=Max("at"))["at"]
    rolled_1h = Rollup.objects.filter(period=HOUR).aggregate(at=Max("at"))["at"]
    raw_cutoff = min(raw_cutoff, rolled_5m) if rolled_5m else raw_cutoff
    five_cutoff = min(five_cutoff, rolled_1h) if rolled_1h else five_cutoff
    deleted = 0
    deleted += _delete(Sample.objects.filter(at__lt=raw_cutoff))
    deleted += _delete(Rollup.objects.filter(period=FIVE, at__lt=five_cutoff))
    deleted += _delete(Rollup.objects.filter(period=HOUR, at__lt=hour_cutoff))
    deleted += _delete(HostSample.objects.filter(period=HostSample.RAW, at__lt=raw_cutoff))
    deleted += _delete(HostSample.objects.filter(period=FIVE, at__lt=five_cutoff))
    deleted += _delete(HostSample.objects.filter(period=HOUR, at__lt=hour_cutoff))
    return deleted


def _delete(queryset):
    total = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:DELETE_BATCH])
        if not ids:
            return total
        count, _ = queryset.model.objects.filter(pk__in=ids).delete()
        total += count
