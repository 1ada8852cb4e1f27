"""Jobs: a Docker write queued as a row, run by a worker, its status pushed live.

A view calls `enqueue`; the row is committed first and the task queued on
commit, so a worker never looks for a job that is not there yet. `run` claims
the job with a conditional update, so a redelivered task (acks_late) never runs
a finished job again; handlers are written to be safe to re-run after a crash.
"""

import json
import logging
import secrets

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from . import crypto
from .audit import Actor, record
from .engine import EngineError
from .models import AuditEntry, Job

log = logging.getLogger(__name__)

HANDLERS = {}


class JobFailed(Exception):
    """A handler's clear refusal (bad input found late, policy, …)."""


def handler(kind):
    def register(fn):
        HANDLERS[kind] = fn
        return fn

    return register


def enqueue(actor, kind, *, host=None, target="", container=None, params=None, secret=None):
    """Queue a job. `secret` holds values the worker needs but nobody may read back
    (environment values): stored encrypted, emptied when the job ends."""
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
        secret_params=crypto.encrypt(json.dumps(secret)) if secret else "",
        nonce=secrets.token_hex(16),
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
        _require_live_user(job)
        message = HANDLERS[job.kind](job) or ""
        status = Job.Status.SUCCEEDED
    except (EngineError, JobFailed) as exc:
        message, status = str(exc), Job.Status.FAILED
    except (PermissionDenied, Http404) as exc:
        message, status = f"Permission denied: {exc}", Job.Status.FAILED
    except Exception as exc:  # a bug: still tell the operator, and log it
        log.exception("job %s crashed", job_id)
        message, status = f"Internal error: {exc!r}", Job.Status.FAILED
    Job.objects.filter(pk=job_id).update(
        status=status, message=message, finished_at=timezone.now(), secret_params=""
    )
    job.refresh_from_db()
    publish(job)
    return job


def secret_params(job):
    """The values `enqueue` was given as `secret`, decrypted ({} once the job has ended)."""
    return json.loads(crypto.decrypt(job.secret_params)) if job.secret_params else {}


def _require_live_user(job):
    """Fail closed: a job whose user was deleted or deactivated does nothing."""
    user = job.user
    if user is not None and user.is_active:
        return
    why = "no longer exists" if user is None else "is deactivated"
    message = f"The user who queued this job {why}; nothing was done."
    record(
        Actor.from_job(job),
        job.kind,
        host=job.host,
        target=job.target,
        target_type=job.kind.partition(".")[0],
        result=AuditEntry.Result.DENIED,
        message=message,
    )
    raise PermissionDenied(message)


def publish(job):
    """Tell websocket subscribers of `job.<id>` that the job changed."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(f"job.{job.pk}", {"type": "job.update", "job": job.pk})
    except Exception:  # a dead Redis must not fail the Docker work already done
        log.warning("could not publish job %s update", job.pk, exc_info=True)
