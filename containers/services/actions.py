"""Container actions (start, stop, …, remove), queued as jobs and run by workers."""

import logging
import time

from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import AnswerLost, EngineError, NotFoundOnEngine, engine
from dashboard.models import AuditEntry

from ..inspect import parse_time
from .sync import mark_removed, refresh_container

log = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")


def request_action(actor, container, action, force=False, volumes=False):
    """Check access and queue an action on one container; returns the Job."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    access.require(actor.user, container, action)
    params = {"action": action}
    if action == "remove":
        params.update(force=bool(force), volumes=bool(volumes))
    return jobs.enqueue(
        actor,
        "container.action",
        host=container.host,
        target=container.name,
        container=container,
        params=params,
    )


def probe_state(job):
    """What the engine reports of a job's container, for a job whose worker was lost."""
    container = job.container
    if container is None:
        return "no container known to the dashboard"
    with engine(container.host) as client:
        try:
            return f"'{client.api.inspect_container(container.docker_id)['State']['Status']}'"
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return "the container is gone"
            raise


def _state_now(job):
    try:
        return probe_state(job)
    except EngineError as exc:
        return f"nothing yet (not answering: {exc.message})"


@jobs.handler("container.action", probe=probe_state)
def run_action(job):
    container = job.container
    if container is None:
        raise jobs.JobFailed("The container is no longer known to the dashboard.")
    action = job.params["action"]
    actor = Actor.from_job(job)
    params = {k: v for k, v in job.params.items() if k != "action"}
    where = dict(target=container, params=params, job=job)

    try:
        access.require(job.user, container, action)
    except (PermissionDenied, Http404) as exc:
        record(
            actor, f"container.{action}", result=AuditEntry.Result.DENIED, message=str(exc), **where
        )
        raise
    # The intent is on record before the engine is asked: a worker killed mid-call
    # leaves an entry that recovery completes as "outcome unknown".
    intent = record(actor, f"container.{action}", result=AuditEntry.Result.PENDING, **where)
    try:
        with engine(container.host) as client:
            since = job.created_at if job.attempts > 1 else None
            note = _do(client.api, container.docker_id, action, params, rerun_since=since)
            refresh_container(container, client)
    except AnswerLost as exc:
        # The engine may have done it: say so, with what it reports now (if it answers).
        said = f"Outcome unknown: {exc.message} The engine reports {_state_now(job)}."
        intent.complete(AuditEntry.Result.UNKNOWN, said)
        raise jobs.JobFailed(said) from exc
    except EngineError as exc:
        gone = isinstance(exc, NotFoundOnEngine)
        if not (gone and action == "remove"):
            intent.complete(AuditEntry.Result.FAILED, exc.message)
            raise
        mark_removed(container)  # a retried remove whose first run succeeded
        note = "already removed"
    intent.complete(AuditEntry.Result.OK, note or "")
    return note or ""  # the row already says what and where; "Succeeded" says the rest


# Engine states in which an action has nothing left to do (a rerun after a lost
# worker must not, say, start a container the first run already started and that
# has since been stopped by someone else: it only finishes what was asked).
ALREADY_DONE = {
    "start": {"running"},
    "stop": {"exited", "created", "dead"},
    "kill": {"exited", "created", "dead"},
    "pause": {"paused"},
    "unpause": {"running"},
}
STOP_TIMEOUT = 10
# A lost worker's stop or restart may still be under way on the engine (it carries on
# without its client): a rerun gives it this long to finish before acting itself.
RERUN_GRACE = STOP_TIMEOUT + 5


def _do(api, docker_id, action, params, rerun_since=None):
    """Do `action` unless the engine shows it done already; returns a note or "".

    `rerun_since`: this is a rerun of a job first queued then, whose worker was lost.
    """
    if rerun_since is not None:
        note = _finished_by_lost_worker(api, docker_id, action, rerun_since)
        if note:
            return note
    if action in ALREADY_DONE:
        state = api.inspect_container(docker_id)["State"]["Status"]
        if state in ALREADY_DONE[action]:
            return f"already {state}"
    if action == "start":
        api.start(docker_id)
    elif action == "stop":
        api.stop(docker_id, timeout=STOP_TIMEOUT)
    elif action == "restart":
        api.restart(docker_id, timeout=STOP_TIMEOUT)
    elif action == "kill":
        api.kill(docker_id)
    elif action == "pause":
        api.pause(docker_id)
    elif action == "unpause":
        api.unpause(docker_id)
    elif action == "remove":
        api.remove_container(
            docker_id, force=params.get("force", False), v=params.get("volumes", False)
        )
    return ""


def _finished_by_lost_worker(api, docker_id, action, since):
    """Wait (bounded) for what the lost worker asked to finish on the engine; a note if it did."""
    deadline = time.monotonic() + RERUN_GRACE
    since = since.timestamp()
    while True:
        state = api.inspect_container(docker_id)["State"]
        if action in ("stop", "kill") and state["Status"] != "running":
            return f"already {state['Status']}"
        started = parse_time(state.get("StartedAt") or "")
        if action == "restart" and state["Status"] == "running" and started:
            if started.timestamp() >= since:
                return "already restarted"
        if action not in ("stop", "kill", "restart") or time.monotonic() > deadline:
            return ""
        time.sleep(0.5)


def reveal_env(actor, container, key):
    """The clear value of one environment variable (operators; audited, value never logged).

    Returns the value, or None when the container has no such variable.
    """
    access.require(actor.user, container, "reveal_env")
    with engine(container.host) as client:
        env = client.api.inspect_container(container.docker_id)["Config"].get("Env") or []
    value = next((v for k, _, v in (e.partition("=") for e in env) if k == key), None)
    record(
        actor,
        "container.reveal_env",
        target=container,
        params={"key": key},
        result=AuditEntry.Result.OK if value is not None else AuditEntry.Result.FAILED,
        message="" if value is not None else "no such variable",
    )
    return value
