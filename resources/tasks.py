"""Celery tasks of the resources app (thin)."""

from celery import shared_task

from dashboard.models import Host

from . import services


@shared_task
def sync_all_resources():
    """Periodic mirror of volumes and networks (pages also sync what they show)."""
    hosts = [h for h in Host.objects.all() if h.is_reachable]
    failed = services.refresh(hosts, services.sync_volumes)
    failed.update(services.refresh(hosts, services.sync_networks))
    return {"hosts_failed": len(failed)}
