"""Celery tasks of the images app (thin)."""

import os
import time

from celery import shared_task
from django.conf import settings

from dashboard.models import Host, Job

from . import services

SPOOL_MAX_AGE = 24 * 3600


@shared_task
def sync_all_images():
    """Periodic mirror of every reachable host's images (pages also sync what they show),
    and removal of uploads whose job will never read them."""
    hosts = [h for h in Host.objects.all() if h.is_reachable]
    failed = services.refresh(hosts)
    return {"hosts_failed": len(failed), "spool_removed": clean_spool()}


def clean_spool(now=None):
    """Uploads older than a day whose job is no longer queued or running."""
    folder = settings.IMAGE_SPOOL_DIR
    if not os.path.isdir(folder):
        return 0
    now = now or time.time()
    waiting = {
        p.get("spool")
        for p in Job.objects.filter(
            kind__in=("image.build", "image.load"),
            status__in=(Job.Status.QUEUED, Job.Status.RUNNING),
        ).values_list("params", flat=True)
    }
    removed = 0
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        token = name.removesuffix(".tar")
        if token in waiting or now - os.path.getmtime(path) < SPOOL_MAX_AGE:
            continue
        try:
            os.remove(path)
            removed += 1
        except OSError:
            pass
    return removed
