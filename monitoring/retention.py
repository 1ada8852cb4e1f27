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
from functools import partial

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


def _walk(source, start, closed_end, period, roll):
    """`roll(bucket)` for each closed bucket holding source rows, from `start` on.

    Empty stretches are jumped over (one indexed query), so a collector that was off
    for days costs nothing; at most MAX_BUCKETS per run.
    """
    step = timedelta(seconds=period)
    bucket = floor(start, period)
    written = done = 0
    while bucket + step <= closed_end and done < MAX_BUCKETS:
        written += roll(bucket)
        done += 1
        following = source.filter(at__gte=bucket + step).aggregate(at=Min("at"))["at"]
        if following is None:
            break
        bucket = floor(following, period)
    return written


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
    raw = Sample.objects.all()
    start = _start(Rollup, FIVE, raw)
    if start is not None:
        written += _walk(raw, start, closed_5m, FIVE, _rollup_raw_bucket)
    fives = Rollup.objects.filter(period=FIVE)
    start = _start(Rollup, HOUR, fives)
    if start is not None:
        written += _walk(fives, start, floor(closed_5m, HOUR), HOUR, _rollup_hour_bucket)
    written += _rollup_hosts(closed_5m)
    return written


def _rollup_raw_bucket(bucket):
    end = bucket + timedelta(seconds=FIVE)
    # Aliases differ from the field names (Django refuses an aggregate over an alias).
    aggregates = {"n": Count("id")}
    for name in METRICS:
        aggregates[f"avg__{name}"] = Avg(name)
        aggregates[f"max__{name}"] = Max(name)
    rows = (
        Sample.objects.filter(at__gte=bucket, at__lt=end)
        .values("container_id", "host_id")
        .annotate(**aggregates)
        .order_by()
    )
    objects = []
    for row in rows:
        values = {}
        for name in METRICS:
            values[name] = _value(name, row[f"avg__{name}"], INT_FIELDS)
            values[f"{name}_max"] = _value(name, row[f"max__{name}"], INT_FIELDS)
        objects.append(
            Rollup(
                container_id=row["container_id"],
                host_id=row["host_id"],
                period=FIVE,
                at=bucket,
                count=row["n"],
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
        source = HostSample.objects.filter(period=source_period)
        start = _start(HostSample, period, source)
        if start is not None:
            written += _walk(source, start, closed, period, partial(_roll_hosts, source, period))
    return written


def _roll_hosts(source, period, bucket):
    end = bucket + timedelta(seconds=period)
    rows = (
        source.filter(at__gte=bucket, at__lt=end)
        .values("host_id")
        .annotate(containers_avg=Avg("containers"), **{f"avg__{f}": Avg(f) for f in HOST_FIELDS})
        .order_by()
    )
    objects = [
        HostSample(
            host_id=row["host_id"],
            period=period,
            at=bucket,
            containers=round(row["containers_avg"] or 0),
            **{f: _value(f, row[f"avg__{f}"], HOST_INT_FIELDS) for f in HOST_FIELDS},
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
    return len(objects)


def prune(now=None):
    """Delete what is past its retention; returns the number of rows deleted."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(hours=settings.METRICS_RAW_HOURS)
    five_cutoff = now - timedelta(days=settings.METRICS_5M_DAYS)
    hour_cutoff = now - timedelta(days=settings.METRICS_1H_DAYS)
    deleted = 0
    for model, source, target, cutoff in (
        (Rollup, None, FIVE, raw_cutoff),
        (Rollup, FIVE, HOUR, five_cutoff),
        (HostSample, HostSample.RAW, FIVE, raw_cutoff),
        (HostSample, FIVE, HOUR, five_cutoff),
    ):
        # Never past what has been rolled up: the newest bucket of the next kind.
        rolled = model.objects.filter(period=target).aggregate(at=Max("at"))["at"]
        if rolled is None:
            continue
        if source is None:
            rows = Sample.objects.filter(at__lt=min(cutoff, rolled))
        else:
            rows = model.objects.filter(period=source, at__lt=min(cutoff, rolled))
        deleted += _delete(rows)
    deleted += _delete(Rollup.objects.filter(period=HOUR, at__lt=hour_cutoff))
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
