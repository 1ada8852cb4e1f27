"""Celery tasks of the containers app (thin)."""

from celery import shared_task

from dashboard.models import Host

from . import services


@shared_task
def sync_all_hosts():
    """Periodic full sync: the safety net behind the events watcher."""
    errors = services.refresh_hosts(Host.objects.all())
    return {"hosts_failed": len(errors)}
