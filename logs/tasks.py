"""Celery tasks of the logs app (thin)."""

from celery import shared_task

from dashboard.models import Host

from . import archive


@shared_task
def capture_all_logs():
    """Periodic: archive what every present container printed since the last pass."""
    return {"lines": sum(archive.capture_host(h) for h in Host.objects.all())}


@shared_task
def prune_log_archive():
    return {"deleted": archive.prune()}
