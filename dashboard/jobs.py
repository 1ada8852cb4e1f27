"""Jobs: a Docker write queued as a row, run by a worker, its status pushed live.

A view calls `enqueue`; the row is committed first and the task queued on
commit, so a worker never looks for a job that is not there yet. `run` claims
the job with a conditional update and holds a lease it renews while it works, so
a redelivered task (acks_late) never runs a job twice at once.

The database, not the broker, is the source of truth: `recover` (beat, every few
seconds) sends again a queued job no worker claimed (the broker lost it), and
notices a claimed job whose lease ran out (its worker died). Such a job runs
again once — handlers read the engine first and do only what is still to be
done — and otherwise ends as failed with what the engine reports. Audit intents
the lost worker left open are completed as "outcome unknown" with that state.
"""

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone

from containers.inspect import mask_credentials

from . import access, crypto
from .audit import Actor, record
from .engine import EngineError
from .models import AuditEntry, Job

log = logging.getLogger(__name__)

HANDLERS = {}
# What a handler can say about the engine when its worker was lost: kind → fn(job).
STATE_PROBES = {}
MAX_ATTEMPTS = 2


class JobFailed(Exception):
    """A handler's clear refusal (bad input found late, policy, …)."""


def handler(kind, probe=None):
    """Register the function that runs jobs of `kind`; `probe(job)` says what the engine
    reports of its target (used when the worker was lost)."""

    def register(fn):
        HANDLERS[kind] = fn
        if probe is not None:
            STATE_PROBES[kind] = probe
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
        api_token=actor.token,
        params=params or {},
        secret_params=crypto.encrypt(json.dumps(secret)) if secret else "",
        nonce=secrets.token_hex(16),
    )
    transaction.on_commit(lambda: send(job.pk))
    return job


def send(job_id):
    """Hand the job to the broker (again); harmless if it is already there."""
    from .tasks import run_job

    Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(sent_at=timezone.now())
    try:
        run_job.delay(job_id)
    except Exception:  # broker down: `recover` sends it again when it is back
        log.warning("could not queue job %s; it will be sent again", job_id, exc_info=True)


def _lease():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def _worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def run(job_id):
    """Run a job once; returns the final Job (or None if it is not ours to run)."""
    now = timezone.now()
    claimable = Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING, lease_until__lt=now)
    claimed = Job.objects.filter(Q(pk=job_id) & claimable).update(
        status=Job.Status.RUNNING,
        started_at=now,
        lease_until=_lease(),
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return None  # finished already, or another worker holds the lease
    job = Job.objects.select_related("user", "host", "container", "api_token").get(pk=job_id)
    publish(job)
    stop = threading.Event()
    threading.Thread(
        target=_renew_lease, args=(job_id, stop), name=f"lease-{job_id}", daemon=True
    ).start()
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
    finally:
        stop.set()
    if job.attempts > 1:
        # Succeeded or not, the job page says this was a rerun: the first run's outcome
        # is in the audit log ("outcome unknown", with what the engine reported).
        message = (message + " " if message else "") + "(ran again after a lost worker)"
    # Engine errors may quote a command or URL with credentials; the job page shows this.
    message = mask_credentials(message)
    # Only while this run still holds the job: had its lease run out and a rerun claimed
    # it (attempts went up), the rerun's outcome is the one to keep.
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, attempts=job.attempts).update(
        status=status,
        message=message,
        finished_at=timezone.now(),
        secret_params="",
        lease_until=None,
    )
    job.refresh_from_db()
    publish(job)
    return job


def _renew_lease(job_id, stop):
    """Keep the claim alive while the handler works (a stop can wait 10 s on the engine).

    A failed renewal (the database restarting, a dropped connection) is tried again at
    the next beat: giving up would let the lease run out under a live worker, and
    recovery would run the job a second time beside it.
    """
    every = settings.JOB_LEASE_SECONDS / 3
    try:
        while not stop.wait(every):
            try:
                Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
                    lease_until=_lease()
                )
            except Exception:
                log.warning("could not renew the lease of job %s", job_id, exc_info=True)
                connection.close()  # a fresh connection at the next try
    finally:
        close_old_connections()


def recover(now=None):
    """Resend jobs the broker lost; rerun or fail jobs whose worker was lost.

    Returns {"resent": [...], "rerun": [...], "failed": [...]} job ids.
    """
    now = now or timezone.now()
    done = {"resent": [], "rerun": [], "failed": []}
    stale = now - timedelta(seconds=settings.JOB_RESEND_SECONDS)
    for pk in Job.objects.filter(
        Q(status=Job.Status.QUEUED) & (Q(sent_at__lt=stale) | Q(sent_at__isnull=True)),
        created_at__lt=stale,
    ).values_list("pk", flat=True):
        send(pk)
        done["resent"].append(pk)
    for job in Job.objects.filter(status=Job.Status.RUNNING, lease_until__lt=now).select_related(
        "host", "container"
    ):
        state = _engine_state(job)
        _close_intents(job, state)
        if job.attempts < MAX_ATTEMPTS:
            requeued = Job.objects.filter(
                pk=job.pk, status=Job.Status.RUNNING, lease_until__lt=now
            ).update(
                status=Job.Status.QUEUED,
                lease_until=None,
                message=f"Worker lost; the engine reports {state}; running it again.",
            )
            if requeued:
                send(job.pk)
                done["rerun"].append(job.pk)
        else:
            failed = Job.objects.filter(
                pk=job.pk, status=Job.Status.RUNNING, lease_until__lt=now
            ).update(
                status=Job.Status.FAILED,
                lease_until=None,
                finished_at=now,
                secret_params="",
                message=f"Worker lost; the engine reports {state}.",
            )
            if failed:
                done["failed"].append(job.pk)
        publish(Job.objects.get(pk=job.pk))
    return done


def _engine_state(job):
    probe = STATE_PROBES.get(job.kind)
    if probe is None:
        return "nothing that tells (no check for this kind of job)"
    try:
        return probe(job)
    except EngineError as exc:
        return f"nothing: {exc.message}"
    except Exception as exc:
        log.warning("state probe for job %s failed", job.pk, exc_info=True)
        return f"nothing: {exc!r}"


def _close_intents(job, state):
    """Intents the lost worker left open: their outcome is unknown; say what the engine shows."""
    when = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
    for entry in AuditEntry.objects.filter(job_id=job.pk, result=AuditEntry.Result.PENDING):
        entry.complete(
            AuditEntry.Result.UNKNOWN,
            f"Worker lost before the result came; at {when} the engine reports {state}.",
        )


def secret_params(job):
    """The values `enqueue` was given as `secret`, decrypted ({} once the job has ended)."""
    return json.loads(crypto.decrypt(job.secret_params)) if job.secret_params else {}


def _require_live_user(job):
    """Fail closed: a job whose user was deleted or deactivated does nothing."""
    user, token = job.user, job.api_token
    if user is not None and user.is_active:
        if job.api_token_id is None:
            return
        if token is not None and token.usable:
            # The same narrowing as the request that queued it (read-only, one team).
            access.narrow(user, token)
            return
        why = "was revoked or has expired" if token is not None else "no longer exists"
        message = f"The API token this job was queued through {why}; nothing was done."
    else:
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


def publish(job, event="job.update"):
    """Tell websocket subscribers of `job.<id>` that the job changed (`job.update`) or
    printed more output (`job.output`)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(f"job.{job.pk}", {"type": event, "job": job.pk})
    except Exception:  # a dead Redis must not fail the Docker work already done
        log.warning("could not publish job %s update", job.pk, exc_info=True)


# ---- output of long jobs

# Terminal control sequences (colours, cursor moves) mean nothing on a web page.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_PROGRESS_KEYS = 500


def clean_output(text):
    """Printable text of one output chunk: no terminal escapes, no credentials in URLs."""
    from containers.inspect import mask_credentials

    text = _ANSI_RE.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    return mask_credentials(_CONTROL_RE.sub("", text))


class Reporter:
    """A running job's output and progress bars, written in batches.

    Handlers call `line()` and `progress()` as often as the engine reports (a pull
    reports every few kilobytes); the row is written and the job page told at most
    every JOB_OUTPUT_FLUSH_SECONDS, and once more when the reporter closes.
    """

    def __init__(self, job):
        self.job = job
        self._lock = threading.Lock()
        self._output = job.output or ""
        self._progress = dict(job.progress or {})
        self._dirty = False
        self._last_flush = 0.0

    def line(self, text):
        text = clean_output(text).rstrip("\n")
        with self._lock:
            self._output += text + "\n"
            limit = settings.JOB_OUTPUT_MAX_CHARS
            if len(self._output) > limit:
                # Keep the tail, cut at a line start so no half line is shown.
                tail = self._output[-limit:]
                self._output = tail[tail.find("\n") + 1 :] if "\n" in tail else tail
            self._dirty = True
        self._maybe_flush()

    def progress(self, key, *, status="", current=None, total=None, unit=""):
        """One bar (a layer, a step): `current` of `total` bytes (or `unit`s), or only a
        status."""
        key = clean_output(key)[:80]
        with self._lock:
            if key not in self._progress and len(self._progress) >= MAX_PROGRESS_KEYS:
                return
            entry = {"status": clean_output(status)[:120]}
            if total:
                entry["total"] = int(total)
                entry["current"] = max(0, min(int(current or 0), int(total)))
                if unit:
                    entry["unit"] = str(unit)[:16]
            self._progress[key] = entry
            self._dirty = True
        self._maybe_flush()

    def _maybe_flush(self):
        if time.monotonic() - self._last_flush >= settings.JOB_OUTPUT_FLUSH_SECONDS:
            self.flush()

    def flush(self):
        with self._lock:
            if not self._dirty:
                return
            output, progress = self._output, dict(self._progress)
            self._dirty = False
            self._last_flush = time.monotonic()
        Job.objects.filter(pk=self.job.pk).update(output=output, progress=progress)
        self.job.output, self.job.progress = output, progress
        publish(self.job, event="job.output")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.flush()
        return False


def reporter(job):
    """`with jobs.reporter(job) as out: out.line(...); out.progress(...)`."""
    return Reporter(job)


def overall_progress(progress):
    """(current, total) bytes summed over the byte bars that know their total."""
    sized = [p for p in (progress or {}).values() if p.get("total") and not p.get("unit")]
    return sum(p.get("current", 0) for p in sized), sum(p["total"] for p in sized)


def output_context(job, live_chars=None):
    """What templates/dashboard/job_output.html needs; `live_chars` keeps only the tail
    (the live socket sends the whole fragment on every flush)."""
    output = job.output or ""
    tail = live_chars is not None and len(output) > live_chars
    if tail:
        output = output[-live_chars:]
        output = output[output.find("\n") + 1 :]
    current, total = overall_progress(job.progress)
    return {
        "job": job,
        "output": output,
        "tail": tail,
        "overall_current": current,
        "overall_total": total,
    }
