"""Container services: the only code that changes containers on engines or in the mirror.

Views call `request_*` (checks access, queues a Job); workers run the handlers
registered with `jobs.handler`, which re-check access (a user may have lost a
role since queuing), call the engine and write the audit entry.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, NotFoundOnEngine, engine, mark_host
from dashboard.models import AuditEntry, Host, Job, Team

from . import inspect, policy
from .models import Container

log = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")
MIRROR_FIELDS = [
    "name",
    "image",
    "command",
    "state",
    "status",
    "health",
    "exit_code",
    "ports",
    "created",
]
JOB_LABEL = "dockyard.job"
RETRY_UNREACHABLE = timedelta(seconds=15)


# ---------------------------------------------------------------- mirror sync


def sync_host(host, timeout=None):
    """Bring the mirror of one host in line with the engine (one list call).

    New containers appear unowned (admins only); vanished ones get removed_at.
    Returns the number of containers on the engine; raises EngineError.
    """
    listed_at = timezone.now()
    with engine(host, timeout=timeout) as client:
        live = client.api.containers(all=True)
    synced_at = timezone.now()
    if not host.is_reachable:
        mark_host(host, reachable=True)
    # Plain values, not model instances: this runs on every list page view that
    # re-lists a host, over every container on it.
    columns = ["pk", "docker_id", "first_seen", *MIRROR_FIELDS]
    present = Container.objects.filter(host=host, removed_at__isnull=True)
    rows = {r["docker_id"]: r for r in present.values(*columns)}
    # A row marked removed by mistake (see below) comes back when the engine lists it.
    live_ids = [item["Id"] for item in live if item["Id"] not in rows]
    if live_ids:
        back = Container.objects.filter(host=host, docker_id__in=live_ids)
        back.filter(removed_at__isnull=False).update(removed_at=None)
        rows.update({r["docker_id"]: r for r in back.values(*columns)})
    new, changed, changed_fields = [], [], set()
    for item in live:
        fields = inspect.fields_from_list_entry(item)
        if not fields["ports"] and fields["state"] != "running":
            # The list endpoint shows no ports for a stopped container; keep the
            # configured ones the mirror learnt from inspect.
            del fields["ports"]
        row = rows.pop(item["Id"], None)
        if row is None:
            new.append(Container(host=host, docker_id=item["Id"], **fields))
            continue
        diff = [k for k, v in fields.items() if row[k] != v]
        if diff:
            current = {k: row[k] for k in MIRROR_FIELDS}
            changed.append(Container(pk=row["pk"], **{**current, **fields}))
            changed_fields.update(diff)
    if new:
        Container.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        # Only the columns that changed (usually just status: "Up 5 minutes"): bulk_update
        # writes a CASE per row per column, 250 ms for 75 rows x 9 columns vs 30 ms for one.
        Container.objects.bulk_update(changed, [f for f in MIRROR_FIELDS if f in changed_fields])
    # Rows first seen after the list call (a job creating one right now) are not
    # judged by a list that could not contain them.
    gone = [r["pk"] for r in rows.values() if r["first_seen"] < listed_at]
    if gone:
        Container.objects.filter(pk__in=gone).update(removed_at=synced_at, state="removed")
    Host.objects.filter(pk=host.pk).update(last_synced=synced_at)
    host.last_synced = synced_at
    return len(live)


def refresh_hosts(hosts):
    """Sync hosts for a page; returns {host_id: error message} for those that failed.

    A host whose mirror was synced in the last MIRROR_FRESH_SECONDS is not asked
    again (the events watcher keeps it current meanwhile). Pages must stay fast
    when an engine is down: a short timeout, hosts in parallel, and a host that
    failed moments ago is not asked again until RETRY_UNREACHABLE has passed
    (its containers show as last seen).
    """
    errors, todo = {}, []
    now = timezone.now()
    fresh = timedelta(seconds=settings.MIRROR_FRESH_SECONDS)
    for host in hosts:
        recent = host.last_checked and (now - host.last_checked) < RETRY_UNREACHABLE
        if host.state == Host.State.UNREACHABLE and recent:
            errors[host.pk] = host.last_error
        elif host.is_reachable and host.last_synced and now - host.last_synced < fresh:
            continue
        else:
            todo.append(host)
    if len(todo) == 1:
        errors.update(_sync_one(todo[0]))
    elif todo:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for result in pool.map(_sync_in_thread, todo):
                errors.update(result)
    return errors


def _sync_one(host):
    try:
        sync_host(host, timeout=settings.DOCKER_PING_TIMEOUT + 2)
    except EngineError as exc:
        return {host.pk: exc.message}
    return {}


def _sync_in_thread(host):
    try:
        return _sync_one(host)
    finally:
        connection.close()  # each pool thread opened its own DB connection


def refresh_container(container, client):
    """Update one mirror row from inspect; mark it removed if the engine lost it."""
    try:
        data = client.api.inspect_container(container.docker_id)
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404:
            mark_removed(container)
            return None
        raise
    for k, v in inspect.fields_from_inspect(data).items():
        setattr(container, k, v)
    container.status = ""  # the list call's wording; next sync fills it in
    container.removed_at = None  # the engine has it, whatever the mirror thought
    container.save(
        update_fields=[
            "removed_at",
            "ports",
            "name",
            "image",
            "command",
            "state",
            "health",
            "exit_code",
            "status",
            "last_seen",
        ]
    )
    return data


def inspect_container(container):
    """Live inspect summary for the detail page; raises EngineError."""
    with engine(container.host) as client:
        try:
            data = client.api.inspect_container(container.docker_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                mark_removed(container)
            raise
    return inspect.summarize(data)


def mark_removed(container):
    """The engine no longer has it: keep the row (history hangs on it), flag it gone."""
    container.removed_at = container.removed_at or timezone.now()
    container.state = "removed"
    Container.objects.filter(pk=container.pk, removed_at__isnull=True).update(
        removed_at=container.removed_at, state="removed"
    )


# ---------------------------------------------------------------- actions


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


@jobs.handler("container.action")
def run_action(job):
    container = job.container
    if container is None:
        raise jobs.JobFailed("The container is no longer known to the dashboard.")
    action = job.params["action"]
    actor = Actor.from_job(job)
    params = {k: v for k, v in job.params.items() if k != "action"}

    def audit(result=AuditEntry.Result.OK, message=""):
        record(
            actor,
            f"container.{action}",
            target=container,
            params=params,
            result=result,
            message=message,
        )

    try:
        access.require(job.user, container, action)
    except (PermissionDenied, Http404) as exc:
        audit(AuditEntry.Result.DENIED, str(exc))
        raise
    try:
        with engine(container.host) as client:
            _do(client.api, container.docker_id, action, params)
            refresh_container(container, client)
    except EngineError as exc:
        gone = isinstance(exc, NotFoundOnEngine)
        if not (gone and action == "remove"):
            audit(AuditEntry.Result.FAILED, exc.message)
            raise
        mark_removed(container)  # a retried remove whose first run succeeded
    audit()
    return ""  # the row already says what and where; "Succeeded" says the rest


def _do(api, docker_id, action, params):
    if action == "start":
        api.start(docker_id)
    elif action == "stop":
        api.stop(docker_id, timeout=10)
    elif action == "restart":
        api.restart(docker_id, timeout=10)
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


# ---------------------------------------------------------------- create


def request_create(actor, host, team, spec):
    """Queue creation of a container from a policy-checked spec; returns the Job."""
    access.require(actor.user, host, "create_container")
    access.require(actor.user, team, "create_container")
    if needs_admin(spec):
        access.require(actor.user, team, "privileged")
    label = spec.get("name") or spec["image"]
    return jobs.enqueue(
        actor,
        "container.create",
        host=host,
        target=label,
        params={**spec, "host_id": host.pk, "team_id": team.pk},
    )


@jobs.handler("container.create")
def run_create(job):
    spec = dict(job.params)
    host = Host.objects.get(pk=spec.pop("host_id"))
    team = Team.objects.get(pk=spec.pop("team_id"))
    actor = Actor.from_job(job)
    audit_params = _audit_params(spec)
    try:
        # Re-check at run time: a role may have been revoked since the job was queued.
        access.require(job.user, host, "create_container")
        access.require(job.user, team, "create_container")
        admin = access.can(job.user, team, "privileged")
        if needs_admin(spec) and not admin:
            raise policy.PolicyError("privileged", "Your role does not allow privileged options.")
        with engine(host) as client:
            if not admin:
                _refuse_host_bound_volumes(client.api, spec.get("volumes", []))
            container = _create_and_start(client, host, team, job, spec)
    except (EngineError, policy.PolicyError) as exc:
        record(
            actor,
            "container.create",
            host=host,
            team=team,
            target=spec.get("name") or spec["image"],
            target_type="container",
            params=audit_params,
            result=AuditEntry.Result.FAILED,
            message=str(exc),
        )
        if isinstance(exc, policy.PolicyError):
            raise jobs.JobFailed(exc.message) from exc
        raise
    record(actor, "container.create", target=container, params=audit_params)
    Job.objects.filter(pk=job.pk).update(container=container)
    return f"container {container.short_id}"


def needs_admin(spec):
    return bool(spec.get("privileged") or spec.get("binds"))


def _audit_params(spec):
    """The spec without env values (they may hold secrets)."""
    out = {k: v for k, v in spec.items() if k != "env"}
    out["env_keys"] = sorted(spec.get("env", {}))
    return out


def _refuse_host_bound_volumes(api, volumes):
    """A named volume created elsewhere with bind driver options is a host path in disguise."""
    for vol in volumes:
        try:
            info = api.inspect_volume(vol["name"])
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                continue
            raise
        opts = info.get("Options") or {}
        if opts.get("device") or "bind" in (opts.get("o") or "") or opts.get("type") == "none":
            raise policy.PolicyError(
                "volumes", f"Volume {vol['name']!r} binds a host path; your role cannot use it."
            )


def _create_and_start(client, host, team, job, spec):
    api = client.api
    existing = api.containers(all=True, filters={"label": f"{JOB_LABEL}={job.pk}"})
    if existing:  # a redelivered job: the first run created it already
        docker_id = existing[0]["Id"]
    else:
        _ensure_image(api, spec["image"])
        docker_id = api.create_container(**build_create_kwargs(api, job, spec))["Id"]
        try:
            api.start(docker_id)
        except Exception:
            # "Changes nothing": a container that cannot start (taken port, bad
            # command) is removed again rather than left behind half-made.
            try:
                api.remove_container(docker_id, force=True)
            except Exception:
                log.warning("could not remove failed container %s", docker_id, exc_info=True)
            raise
    data = api.inspect_container(docker_id)
    fields = inspect.fields_from_inspect(data)
    with transaction.atomic():
        container, _ = Container.objects.update_or_create(
            host=host,
            docker_id=docker_id,
            defaults={**fields, "owner": job.user, "team": team, "removed_at": None},
        )
    return container


def _ensure_image(api, image):
    try:
        api.inspect_image(image)
        return
    except Exception as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
    repo, tag = _split_tag(image)
    try:
        api.pull(repo, tag=tag)
    except Exception as exc:
        detail = getattr(exc, "explanation", None) or str(exc)
        raise EngineError(
            f"Image {image!r} is not on this host and could not be pulled: {detail}"
        ) from exc


def _split_tag(image):
    if "@" in image:
        return image, None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def build_create_kwargs(api, job, spec):
    """docker-py create_container arguments from a normalised spec (never raw input)."""
    port_bindings, exposed = {}, []
    for p in spec.get("ports", []):
        key = f"{p['container_port']}/{p['proto']}"
        exposed.append((p["container_port"], p["proto"]))
        binding = (p["host_ip"], p["host_port"]) if p["host_ip"] else p["host_port"]
        port_bindings.setdefault(key, []).append(binding)
    binds = [f"{v['name']}:{v['target']}:{v['mode']}" for v in spec.get("volumes", [])]
    priv = spec.get("privileged") or {}
    binds += [f"{b['path']}:{b['target']}:{b['mode']}" for b in spec.get("binds", [])]
    network = spec.get("network") or None
    host_config = api.create_host_config(
        port_bindings=port_bindings or None,
        binds=binds or None,
        restart_policy=spec.get("restart") or None,
        mem_limit=spec.get("memory") or None,
        nano_cpus=spec.get("nano_cpus") or None,
        network_mode=priv.get("network_mode") or network,
        privileged=bool(priv.get("privileged")),
        cap_add=priv.get("cap_add") or None,
        devices=priv.get("devices") or None,
        security_opt=priv.get("security_opt") or None,
        pid_mode=priv.get("pid_mode") or None,
        ipc_mode=priv.get("ipc_mode") or None,
    )
    labels = {
        **spec.get("labels", {}),
        **settings.CONTAINER_LABELS,
        JOB_LABEL: str(job.pk),
        "dockyard.managed": "true",
    }
    return {
        "image": spec["image"],
        "name": spec.get("name") or None,
        "command": spec.get("command") or None,
        "environment": spec.get("env") or None,
        "labels": labels,
        "ports": [(port, proto) for port, proto in exposed] or None,
        "host_config": host_config,
        "detach": True,
    }


# ---------------------------------------------------------------- ownership


def assign_team(actor, container, team):
    """Give a container (typically created outside the dashboard) to a team. Admin only."""
    access.require(actor.user, container, "assign")
    old = container.team.name if container.team else None
    container.team = team
    container.save(update_fields=["team", "last_seen"])
    record(
        actor,
        "container.assign",
        target=container,
        team=team,
        params={"from_team": old, "to_team": team.name if team else None},
    )
    return container
