"""Volume and network services: the mirror, ownership checks, create/remove/assign.

Everything a team mounts or attaches is owned in the database. A create form may
name only the team's own volumes (a new name becomes a new volume of the team)
and the team's own networks; the worker checks again against the engine at run
time, so a volume made behind the dashboard's back between the two is refused.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from containers import inspect
from containers.policy import PolicyError
from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, NotFoundOnEngine, engine
from dashboard.models import AuditEntry, Host, Team

from .models import Network, Volume

log = logging.getLogger(__name__)

BUILTIN_NETWORKS = ("bridge", "none", "host")
MANAGED_LABELS = {"dockyard.managed": "true"}


# ---------------------------------------------------------------- mirror


def binds_host_path(options):
    """Driver options that make a local volume a host directory in disguise."""
    opts = options or {}
    return bool(opts.get("device") or "bind" in (opts.get("o") or "") or opts.get("type") == "none")


def sync_volumes(host):
    """Mirror the host's volumes: new ones unowned, vanished ones marked removed."""
    with engine(host) as client:
        live = client.api.volumes().get("Volumes") or []
    now = timezone.now()
    seen = set()
    known = {v.name: v for v in Volume.objects.filter(host=host)}
    for item in live:
        seen.add(item["Name"])
        fields = {
            "driver": item.get("Driver") or "",
            "mountpoint": item.get("Mountpoint") or "",
            "binds_host_path": binds_host_path(item.get("Options")),
            "created": inspect.parse_time(item.get("CreatedAt") or ""),
            "removed_at": None,
        }
        row = known.get(item["Name"])
        if row is not None and not same_volume(row, item):
            # The name came back as another volume (removed and made again behind the
            # dashboard's back): a name is not an identity, so it belongs to nobody.
            fields.update(team=None, owner=None, created_by_dashboard=False)
        Volume.objects.update_or_create(host=host, name=item["Name"], defaults=fields)
    Volume.objects.present().filter(host=host, first_seen__lt=now).exclude(name__in=seen).update(
        removed_at=now
    )
    return len(live)


def same_volume(row, info):
    """The engine's volume `info` is the one the row recorded (same creation time, never
    seen removed in between)."""
    if row.removed_at is not None:
        return False
    created = inspect.parse_time(info.get("CreatedAt") or "")
    return row.created is None or created is None or row.created == created


def sync_networks(host):
    """Mirror the host's networks by id (names are not unique on an engine)."""
    with engine(host) as client:
        live = client.api.networks()
    now = timezone.now()
    seen = set()
    for item in live:
        if item.get("Name") in BUILTIN_NETWORKS:
            continue  # the engine's own; nobody owns them
        seen.add(item["Id"])
        fields = {
            "name": item.get("Name") or item["Id"][:12],
            "driver": item.get("Driver") or "",
            "scope": item.get("Scope") or "",
            "internal": bool(item.get("Internal")),
            "created": inspect.parse_time(item.get("Created") or ""),
            "removed_at": None,
        }
        Network.objects.update_or_create(host=host, docker_id=item["Id"], defaults=fields)
    Network.objects.present().filter(host=host, first_seen__lt=now).exclude(
        docker_id__in=seen
    ).update(removed_at=now)
    return len(live)


def refresh(hosts, sync):
    """Sync each host with `sync`; returns {host_id: message} for those that failed."""
    errors = {}
    for host in hosts:
        try:
            sync(host)
        except EngineError as exc:
            errors[host.pk] = exc.message
    return errors


def volume_usage(host):
    """{volume name: [container names]} from one container list call."""
    with engine(host) as client:
        listed = client.api.containers(all=True)
    usage = {}
    for c in listed:
        name = (c.get("Names") or ["/" + c["Id"][:12]])[0].lstrip("/")
        for m in c.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                usage.setdefault(m["Name"], []).append(name)
    return usage


# ---------------------------------------------------------------- create policy


def check_volumes(user, host, team, names):
    """Form-time check: each name is the team's volume on `host`, or a new one.

    Raises PolicyError naming the volume. Dashboard admins may mount anything.
    The message does not say whose a refused volume is.
    """
    if not names or access.is_admin(user):
        return
    sync_volumes(host)  # what the engine has now, not what the mirror last saw
    rows = {v.name: v for v in Volume.objects.present().filter(host=host, name__in=names)}
    for name in names:
        row = rows.get(name)
        if row is None:
            continue  # a new volume: the job creates it as the team's
        if row.team_id != team.pk:
            raise PolicyError(
                "volumes",
                f"Volume {name!r} is not one of {team.name}'s volumes on {host.name}; "
                "pick one of the team's volumes or a new name.",
            )
        if row.binds_host_path:
            raise PolicyError(
                "volumes", f"Volume {name!r} binds a host path; your role cannot use it."
            )


def claim_volumes(api, job, host, team, names, admin):
    """Run-time check and creation of a create job's named volumes.

    A volume that exists on the engine must be the team's in the database (admins
    excepted); a missing one is created here and recorded as the team's before
    the container that mounts it exists.
    """
    for name in names:
        info = _volume_info(api, name)
        row = Volume.objects.present().filter(host=host, name=name).first()
        if info is not None:
            if admin:
                continue
            if row is None or row.team_id != team.pk or not same_volume(row, info):
                raise PolicyError(
                    "volumes",
                    f"Volume {name!r} is not one of {team.name}'s volumes on {host.name}.",
                )
            if binds_host_path(info.get("Options")):
                raise PolicyError(
                    "volumes", f"Volume {name!r} binds a host path; your role cannot use it."
                )
            continue
        labels = {**settings.CONTAINER_LABELS, **MANAGED_LABELS}
        info = api.create_volume(name=name, labels=labels)
        _own_volume(host, team, job.user, info)


def own_anonymous_volumes(api, host, team, user, data, claimed):
    """Volumes the engine made for a container the job created (image VOLUMEs) are the team's."""
    for m in data.get("Mounts") or []:
        if m.get("Type") == "volume" and m.get("Name") and m["Name"] not in claimed:
            row = Volume.objects.filter(host=host, name=m["Name"]).first()
            if row is None or (row.team_id is None and not row.created_by_dashboard):
                _own_volume(host, team, user, api.inspect_volume(m["Name"]))


def _own_volume(host, team, user, info):
    return Volume.objects.update_or_create(
        host=host,
        name=info["Name"],
        defaults={
            "team": team,
            "owner": user,
            "created_by_dashboard": True,
            "driver": info.get("Driver") or "local",
            "mountpoint": info.get("Mountpoint") or "",
            "created": inspect.parse_time(info.get("CreatedAt") or "") or timezone.now(),
            "removed_at": None,
        },
    )[0]


def resolve_network(user, host, team, name):
    """The network a create form names → (name, docker id or "") for the spec.

    Non-admins: the default bridge, none, or one of the team's networks on the
    host (by its recorded id: two networks may share a name). Raises PolicyError.
    """
    name = (name or "").strip()
    if name in ("", "bridge", "none", "default"):
        return name if name != "default" else "", ""
    admin = access.is_admin(user)
    if name == "host" or name.startswith("container:"):
        if not admin:
            raise PolicyError("network", f"Network {name!r} is not allowed for your role.")
        return name, ""
    sync_networks(host)
    rows = Network.objects.present().filter(host=host, name=name)
    if not admin:
        rows = rows.filter(team=team)
    row = rows.first()
    if row is None:
        if admin:
            raise PolicyError("network", f"There is no network {name!r} on {host.name}.")
        raise PolicyError(
            "network", f"Network {name!r} is not one of {team.name}'s networks on {host.name}."
        )
    return name, row.docker_id


# ---------------------------------------------------------------- pages' actions


def request_create(actor, kind, host, team, name, options=None):
    """Queue creation of a team's volume or network (`kind` is "volume" or "network")."""
    access.require_host_for_team(actor.user, host, team)
    model = Volume if kind == "volume" else Network
    if model.objects.present().filter(host=host, name=name).exists():
        # Say "exists" only of what the user can see: no oracle for other teams' names.
        visible = access.restrict(actor.user, model.objects.present(), "view")
        if visible.filter(host=host, name=name).exists():
            raise PolicyError("name", f"A {kind} named {name!r} already exists on {host.name}.")
        raise PolicyError(
            "name", f"The name {name!r} cannot be used on {host.name}; choose another."
        )
    return jobs.enqueue(
        actor,
        f"{kind}.create",
        host=host,
        target=name,
        params={"name": name, "team_id": team.pk, **(options or {})},
    )


def request_remove(actor, obj):
    access.require(actor.user, obj, "remove")
    kind = obj._meta.model_name
    return jobs.enqueue(
        actor, f"{kind}.remove", host=obj.host, target=obj.name, params={"pk": obj.pk}
    )


# A random per-job label (as container creates use): a rerun after a lost worker finds
# what the first run made by it, never by the name alone (a name is not an identity).
NONCE_LABEL = "dockyard.nonce"


def _made_by(job, labels, created):
    """Whether an engine object with these labels, created at `created`, is this job's."""
    if not job.nonce or (labels or {}).get(NONCE_LABEL) != job.nonce:
        return False
    when = inspect.parse_time(created or "")
    return when is None or when.timestamp() >= job.created_at.timestamp() - 1


def _find_own_network(api, job):
    """The id of the network an earlier run of this job made, or None."""
    if job.created_id:
        try:
            api.inspect_network(job.created_id)
            return job.created_id
        except Exception as exc:
            if getattr(exc, "status_code", None) != 404:
                raise
            return None
    found = [
        n
        for n in api.networks(filters={"label": f"{NONCE_LABEL}={job.nonce}"})
        if _made_by(job, n.get("Labels"), n.get("Created"))
    ]
    if len(found) > 1:
        raise jobs.JobFailed("More than one network claims to be this job's; refusing to guess.")
    return found[0]["Id"] if found else None


def probe_resource(job):
    """What the engine reports of a volume or network job's target (worker lost)."""
    kind, _, verb = job.kind.partition(".")
    with engine(job.host) as client:
        api = client.api
        if kind == "network":
            if verb == "create":
                docker_id = _find_own_network(api, job)
            else:
                row = Network.objects.filter(pk=job.params.get("pk")).first()
                docker_id = row.docker_id if row else None
            if not docker_id:
                return "no network made by this job" if verb == "create" else "no such network"
            try:
                api.inspect_network(docker_id)
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    return f"no network {docker_id[:12]}"
                raise
            return f"network {docker_id[:12]} exists"
        name = job.params.get("name") or job.target
        try:
            info = api.inspect_volume(name)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return f"no volume {name!r}"
            raise
        mine = _made_by(job, info.get("Labels"), info.get("CreatedAt"))
        return f"volume {name!r} exists" + (" (made by this job)" if mine else "")


@jobs.handler("volume.create", probe=probe_resource)
def run_volume_create(job):
    return _run_create(job, "volume")


@jobs.handler("network.create", probe=probe_resource)
def run_network_create(job):
    return _run_create(job, "network")


def _run_create(job, kind):
    host = job.host
    team = Team.objects.get(pk=job.params["team_id"])
    name = job.params["name"]
    actor = Actor.from_job(job)
    where = {"host": host, "team": team, "target": name, "target_type": kind, "job": job}
    try:
        access.require_host_for_team(job.user, host, team)
    except Exception as exc:
        record(actor, f"{kind}.create", result=AuditEntry.Result.DENIED, message=str(exc), **where)
        raise
    # On record before the engine is asked (completed below, or by job recovery).
    intent = record(
        actor, f"{kind}.create", params={"name": name}, result=AuditEntry.Result.PENDING, **where
    )
    labels = {**settings.CONTAINER_LABELS, **MANAGED_LABELS, NONCE_LABEL: job.nonce}
    try:
        with engine(host) as client:
            if kind == "volume":
                obj = _create_volume(client.api, job, host, team, name, labels)
            else:
                obj = _create_network(client.api, job, host, team, name, labels)
    except (EngineError, jobs.JobFailed) as exc:
        if isinstance(exc.__cause__, jobs.JobFailed):
            # A refusal raised inside `engine()` arrives wrapped: say it as it was.
            exc = exc.__cause__
        intent.complete(AuditEntry.Result.FAILED, str(exc))
        raise exc from None
    intent.complete(AuditEntry.Result.OK, f"created {getattr(obj, 'docker_id', '') or obj.name}")
    return f"{kind} {name}"


def _volume_info(api, name):
    """The engine's inspect of volume `name`, or None when it has none by that name."""
    try:
        return api.inspect_volume(name)
    except Exception as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        return None


def _create_volume(api, job, host, team, name, labels):
    info = _volume_info(api, name)
    if info is not None:
        # The engine answers a create of an existing name with that volume: only a rerun
        # of this job (a lost worker) may take it, known by the job's nonce.
        if not _made_by(job, info.get("Labels"), info.get("CreatedAt")):
            # Made behind the dashboard's back since the form: whose it is stays unsaid.
            raise jobs.JobFailed(
                f"The name {name!r} cannot be used on {host.name}; choose another."
            )
    else:
        info = api.create_volume(name, labels=labels)
    return _own_volume(host, team, job.user, info)


def _create_network(api, job, host, team, name, labels):
    # Redelivered: the first run's network, by the id it recorded or by the job's nonce.
    docker_id = _find_own_network(api, job)
    if docker_id is None:
        internal = bool(job.params.get("internal"))
        docker_id = api.create_network(
            name, driver="bridge", internal=internal, labels=labels, check_duplicate=True
        )["Id"]
    type(job).objects.filter(pk=job.pk).update(created_id=docker_id)
    with transaction.atomic():
        obj, _ = Network.objects.update_or_create(
            host=host,
            docker_id=docker_id,
            defaults={
                "name": name,
                "team": team,
                "owner": job.user,
                "created_by_dashboard": True,
                "driver": "bridge",
                "internal": bool(job.params.get("internal")),
                "created": timezone.now(),
                "removed_at": None,
            },
        )
    return obj


@jobs.handler("volume.remove", probe=probe_resource)
def run_volume_remove(job):
    return _run_remove(job, Volume)


@jobs.handler("network.remove", probe=probe_resource)
def run_network_remove(job):
    return _run_remove(job, Network)


def _run_remove(job, model):
    obj = model.objects.select_related("host", "team").filter(pk=job.params["pk"]).first()
    kind = model._meta.model_name
    actor = Actor.from_job(job)
    if obj is None:
        raise jobs.JobFailed(f"The {kind} is no longer known to the dashboard.")
    try:
        access.require(job.user, obj, "remove")
    except Exception as exc:
        record(
            actor,
            f"{kind}.remove",
            target=obj,
            result=AuditEntry.Result.DENIED,
            message=str(exc),
            job=job,
        )
        raise
    # On record before the engine is asked (completed below, or by job recovery).
    intent = record(actor, f"{kind}.remove", target=obj, result=AuditEntry.Result.PENDING, job=job)
    note = ""
    try:
        with engine(obj.host) as client:
            if model is Volume:
                client.api.remove_volume(obj.name)
            else:
                client.api.remove_network(obj.docker_id)
    except NotFoundOnEngine:
        note = f"The {kind} was gone already."  # a rerun, or removed behind our back
    except EngineError as exc:
        message = exc.message
        if exc.status_code == 409:
            message = f"The {kind} {obj.name} is in use by a container; remove that first."
        intent.complete(AuditEntry.Result.FAILED, message)
        raise jobs.JobFailed(message) from exc
    model.objects.filter(pk=obj.pk).update(removed_at=timezone.now())
    intent.complete(AuditEntry.Result.OK, note)
    return note


def visible_hosts(user):
    return list(access.restrict(user, Host.objects.all(), "view"))
