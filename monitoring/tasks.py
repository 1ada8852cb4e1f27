"""Celery tasks of the monitoring app (thin): the collector's sweep, rollups and pruning."""

from celery import shared_task

from . import collector, retention


@shared_task(ignore_result=True)
def collect_metrics():
    """Periodic (METRICS_INTERVAL): one sweep of every reachable host."""
    results = collector.collect()
    if results is None:
        return {"skipped": "a sweep is still running"}
    return {r.host_id: r.error or r.samples for r in results}


@shared_task(ignore_result=True)
def rollup_metrics():
    """Periodic: roll closed buckets up, then delete what is past its retention."""
    return {"rolled": retention.rollup(), "deleted": retention.prune()}
