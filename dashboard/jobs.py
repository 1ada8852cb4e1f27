"""Jobs: a Docker write queued as a row, run by a worker, its status pushed live.

A view calls `enqueue`; the row is committed first and the task queued on
commit, so a worker never looks for a job that is not there yet. `run` claims
the job with a conditional update, so a redelivered task (acks_late) never runs
a finished job again; handlers are written to be safe to re-run after a crash.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from .engine import EngineError
from .models import Job

log = logging.getLogger(__name__)

HANDLERS = {}


class JobFailed(Exception):
    """A handler's clear refusal (bad input found late, policy, …)."""


def handler(kind):
    def register(fn):
        HANDLERS[kind] = fn
        return fn

    return register


def enqueue(actor, kind, *, host=None, target="", container=None, params=None):
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    job = Job.objects.create(
        kind=kind,
        user=actor.user,
        source_ip=actor.source_ip,
        host=host,
        target=target[:255],
        container=container,
        params=params or {},
    )
    from .tasks import run_job

    transaction.on_commit(lambda: run_job.delay(job.pk))
    return job


def run(job_id):
    """Run a job once; returns the final Job (or None if another worker owns it)."""
    claimed = Job.objects.filter(
        Q(pk=job_id) & Q(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
    ).update(status=Job.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        return None  # finished already: a redelivered message
    job = Job.objects.select_related("user", "host", "container").get(pk=job_id)
    publish(job)
    try:
        message = HANDLERS[job.kind](job) or ""
        status = Job.Status.SUCCEEDED
    except (EngineError, JobFailed) as exc:
        message, status = str(exc), Job.Status.FAILED
    except (PermissionDenied, Http404) as exc:
        message, status = f"Permission denied: {exc}", Job.Status.FAILED
    except Exception as exc:  # a bug: still tell the operator, and log it
        log.exception("job %s crashed", job_id)
        message, status = f"Internal error: {exc!r}", Job.Status.FAILED
    Job.objects.filter(pk=job_id).update(status=status, message=message, finished_at=timezone.now())
    job.refresh_from_db()
    publish(job)
    return job


def publish(job):
    """Tell websocket subscribers of `job.<id>` that the job changed."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(f"job.{job.pk}", {"type": "job.update", "job": job.pk})
    except Exception:  # a dead Redis must not fail the Docker work already done
        log.warning("could not publish job %s update", job.pk, exc_info=True)
