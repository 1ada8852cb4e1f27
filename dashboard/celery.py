"""Celery application: every Docker write and every slow read runs in a worker.

`make run` runs a single worker (thread pool) that also carries Celery beat and the
Docker events watcher, as threads started when the worker is ready: one process
instead of three. scripts/run.sh asks for that with DASHBOARD_WORKER_EMBEDS=beat,events;
nobody else sets it (docker compose runs beat and the watcher as their own services).

Beat runs as a thread rather than `celery worker -B`, which forks a beat process:
when the worker is killed that child lives on, and the restarted worker would start
a second beat next to it.
"""

import logging
import os
import threading
import time

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)

EMBEDS_ENV = "DASHBOARD_WORKER_EMBEDS"
EMBEDDABLE = ("beat", "events")
_beat = None


def embedded_services():
    """The services named in DASHBOARD_WORKER_EMBEDS (comma- or space-separated)."""
    names = set(os.environ.get(EMBEDS_ENV, "").replace(",", " ").split())
    unknown = names - set(EMBEDDABLE)
    if unknown:
        log.error(
            "%s: unknown %s (known: %s)",
            EMBEDS_ENV,
            ", ".join(sorted(unknown)),
            ", ".join(EMBEDDABLE),
        )
    return names & set(EMBEDDABLE)


def _watch_events_forever():
    """The events watcher (containers.events.run), restarted with back-off if it fails."""
    from containers import events

    backoff = 1
    while True:
        started = time.monotonic()
        try:
            events.run()
        except Exception:
            log.exception("events watcher failed; restarting it in %s s", backoff)
        if time.monotonic() - started > 300:
            backoff = 1
        time.sleep(backoff)
        backoff = min(backoff * 2, 60)


@worker_ready.connect
def start_embedded_services(sender=None, **kwargs):
    global _beat
    names = embedded_services()
    if "beat" in names and _beat is None:
        from celery.beat import EmbeddedService

        _beat = EmbeddedService(app, thread=True)
        _beat.start()
        log.info("beat runs inside this worker (schedule %s)", app.conf.beat_schedule_filename)
    if "events" in names:
        threading.Thread(target=_watch_events_forever, name="events-watcher", daemon=True).start()
        log.info("the Docker events watcher runs inside this worker")


@worker_shutdown.connect
def stop_embedded_services(sender=None, **kwargs):
    # The events threads are daemons and hold nothing to flush; beat saves its schedule.
    if _beat is not None:
        _beat.stop()
