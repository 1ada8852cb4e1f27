"""Creating containers: a policy-checked spec queued as a job, made once by a worker.

Identity is never read from the engine: the job records the id the engine
returned the moment it returns it, and a redelivered job finds its container by
that id, or — if the worker died between the two — by a random nonce that only
the job's row knows, checked against the creation time.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, engine
from dashboard.models import AuditEntry, Host, Job, Team
from images.services import use as image_use
from resources.services import claim_volumes, own_anonymous_volumes

from .. import inspect, policy
from ..models import Container

log = logging.getLogger(__name__)

NONCE_LABEL = "dockyard.nonce"
# Spec fields that may carry credentials: kept encrypted in the job, masked in its params.
SECRET_FIELDS = ("env", "command", "labels")


def request_create(actor, host, team, spec):
    """Queue creation of a container from a policy-checked spec; returns the Job.

    Environment values travel encrypted (`jobs.enqueue(secret=…)`) and are gone
    from the job once it ends; the job's params keep only the keys.
    """
    access.require_host_for_team(actor.user, host, team)
    if needs_admin(spec):
        access.require(actor.user, team, "privileged")
    label = spec.get("name") or spec["image"]
    # What may hold a secret travels encrypted; params keep only what can be shown.
    secret = {k: spec[k] for k in SECRET_FIELDS if spec.get(k)}
    params = {k: v for k, v in spec.items() if k != "env"}
    params.update(_audit_params(spec), host_id=host.pk, team_id=team.pk)
    return jobs.enqueue(
        actor,
        "container.create",
        host=host,
        target=label,
        params=params,
        secret=secret or None,
    )


def probe_created(job):
    """What the engine reports of the container a create job made (by id, else by nonce)."""
    with engine(job.host) as client:
        try:
            docker_id = _find_own_container(client.api, job)
        except jobs.JobFailed as exc:
            return str(exc)
        if docker_id is None:
            return "no container made by this job"
        state = client.api.inspect_container(docker_id)["State"]["Status"]
        return f"container {docker_id[:12]} '{state}'"


@jobs.handler("container.create", probe=probe_created)
def run_create(job):
    spec = dict(job.params)
    host = Host.objects.get(pk=spec.pop("host_id"))
    team = Team.objects.get(pk=spec.pop("team_id"))
    spec.pop("env_keys", None)
    spec.update(jobs.secret_params(job))  # env, and the command and labels unmasked
    actor = Actor.from_job(job)
    audit_params = _audit_params(spec)
    where = dict(
        host=host,
        team=team,
        target=spec.get("name") or spec["image"],
        target_type="container",
        params=audit_params,
        job=job,
    )
    try:
        # Re-check at run time: a role may have been revoked since the job was queued.
        access.require_host_for_team(job.user, host, team)
        admin = access.can(job.user, team, "privileged")
        if needs_admin(spec) and not admin:
            raise PermissionDenied("Your role does not allow privileged options.")
    except (PermissionDenied, Http404) as exc:
        record(
            actor, "container.create", result=AuditEntry.Result.DENIED, message=str(exc), **where
        )
        raise
    # On record before the engine is asked (completed below, or by job recovery).
    intent = record(actor, "container.create", result=AuditEntry.Result.PENDING, **where)
    try:
        with engine(host) as client:
            container = _create_and_start(client, host, team, job, spec, admin)
    except (EngineError, policy.PolicyError) as exc:
        if isinstance(exc.__cause__, policy.PolicyError):
            # A refusal raised inside `engine()` arrives wrapped: say it as it was.
            exc = exc.__cause__
        message = _scrub(_neutral_conflict(job.user, host, spec, exc), spec)
        intent.complete(AuditEntry.Result.FAILED, message)
        if isinstance(exc, policy.PolicyError) or message != str(exc):
            raise jobs.JobFailed(message) from exc
        raise
    Job.objects.filter(pk=job.pk).update(container=container)
    # The intent could not know the engine id: the outcome names it (the audit search
    # looks in messages too).
    intent.complete(AuditEntry.Result.OK, f"created {container.docker_id}")
    return f"container {container.short_id}"


def needs_admin(spec):
    return bool(spec.get("privileged") or spec.get("binds"))


def _audit_params(spec):
    """The spec without env values (they may hold secrets) and with masked credentials."""
    out = {k: v for k, v in spec.items() if k != "env"}
    out["env_keys"] = sorted(spec.get("env") or {})
    if out.get("command"):
        out["command"] = [inspect.mask_credentials(part) for part in out["command"]]
    if out.get("labels"):
        out["labels"] = {k: inspect.mask_credentials(v) for k, v in out["labels"].items()}
    return out


def _scrub(message, spec):
    """An engine error may quote the command or a value (runc names the executable it
    could not start): mask credentials in it and every environment value it contains."""
    for value in sorted((spec.get("env") or {}).values(), key=len, reverse=True):
        if len(value) >= 4:  # shorter ones would mask ordinary words of the message
            message = message.replace(value, inspect.MASK)
    return inspect.mask_credentials(message)


def _neutral_conflict(user, host, spec, exc):
    """The engine's name clash names the other container's id: say only what the user may see."""
    if getattr(exc, "status_code", None) != 409 or not spec.get("name"):
        return str(exc)
    name = spec["name"]
    visible = access.restrict(user, Container.objects.present(), "view")
    if visible.filter(host=host, name=name).exists():
        return f"A container named {name!r} already exists on {host.name}."
    return f"The name {name!r} cannot be used on {host.name}; choose another."


def _find_own_container(api, job):
    """The container this job created on an earlier run, if any — never by a label alone.

    The id recorded at creation wins; if the worker died before recording it,
    the container carrying this job's secret nonce, created after the job
    started, is ours (two such containers mean someone copied the nonce: refuse).
    """
    if job.created_id:
        try:
            api.inspect_container(job.created_id)
            return job.created_id
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise jobs.JobFailed(
                    "The container this job created was removed before the job finished."
                ) from exc
            raise
    found = api.containers(all=True, filters={"label": f"{NONCE_LABEL}={job.nonce}"})
    started = job.created_at.timestamp() - 1
    found = [c for c in found if c.get("Created", 0) >= started]
    if len(found) > 1:
        raise jobs.JobFailed("More than one container claims to be this job's; refusing to guess.")
    return found[0]["Id"] if found else None


def _create_and_start(client, host, team, job, spec, admin):
    api = client.api
    docker_id = _find_own_container(api, job)
    volumes = [v["name"] for v in spec.get("volumes", [])]
    if docker_id is None:
        # The image first: a refusal must leave nothing made (no volume, no pull).
        image_id = _ensure_image(api, host, team, job, spec["image"], admin)
        claim_volumes(api, job, host, team, volumes, admin)
        if spec.get("network_id"):
            try:
                api.inspect_network(spec["network_id"])
            except Exception as exc:
                raise policy.PolicyError(
                    "network", f"Network {spec.get('network')!r} no longer exists on {host.name}."
                ) from exc
        docker_id = api.create_container(**build_create_kwargs(api, job, spec))["Id"]
        # Recorded at once: a redelivered job must find this container by id.
        Job.objects.filter(pk=job.pk).update(created_id=docker_id)
        try:
            _check_created_image(api, host, team, docker_id, image_id, spec["image"], admin)
            api.start(docker_id)
        except Exception:
            # "Changes nothing": a container that cannot start (taken port, bad
            # command) is removed again rather than left behind half-made.
            try:
                api.remove_container(docker_id, force=True)
            except Exception:
                log.warning("could not remove failed container %s", docker_id, exc_info=True)
            raise
    else:
        # A rerun found the container the lost worker made: record its id, and start
        # it if the first run died before it could (never a second start).
        Job.objects.filter(pk=job.pk).update(created_id=docker_id)
        if api.inspect_container(docker_id)["State"]["Status"] == "created":
            api.start(docker_id)
    data = api.inspect_container(docker_id)
    own_anonymous_volumes(api, host, team, job.user, data, set(volumes))
    fields = inspect.fields_from_inspect(data)
    with transaction.atomic():
        container, _ = Container.objects.update_or_create(
            host=host,
            docker_id=docker_id,
            defaults={**fields, "owner": job.user, "team": team, "removed_at": None},
        )
    return container


def _ensure_image(api, host, team, job, image, admin):
    """The id of the image the container will run, once the team may use it.

    The engine resolves the reference (tag, digest or id) and the host's image
    mirror decides (`images.services.use`): the team's own image or a shared one,
    anything for a dashboard admin. A missing image is pulled through the images
    app's own pull for the team rather than anonymously: the team's granted
    registry credentials (never this server's `docker login`), its right to pull,
    progress on the job page, and the result recorded as the team's image — so
    the next container, and the Images page, see it as theirs. A pull that lands
    on an image already someone else's is refused by the check that follows.
    """
    try:
        return image_use.check_image_use(api, host, team, image, admin).docker_id
    except image_use.ImageMissing:
        pass
    try:
        image_use.pull_for_team(job, host, team, image)
    except EngineError as exc:
        raise EngineError(
            f"Image {image!r} is not on this host and could not be pulled: {exc.message}"
        ) from exc
    return image_use.check_image_use(api, host, team, image, admin).docker_id


def _check_created_image(api, host, team, docker_id, image_id, image, admin):
    """The engine resolved the name again when it created the container: if the tag
    moved to another image in between, that image must pass the check too."""
    used = api.inspect_container(docker_id)["Image"]
    if used != image_id:
        image_use.check_image_id(api, host, team, used, image, admin)


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
    # The id the form resolved from the team's own network (names are not unique).
    network = spec.get("network_id") or spec.get("network") or None
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
        NONCE_LABEL: job.nonce,
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
