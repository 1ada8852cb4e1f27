"""Tag, push, remove, prune; assign and share (dashboard admins)."""

import docker
from django.core.exceptions import PermissionDenied

from containers.policy import PolicyError
from dashboard import access, jobs
from dashboard.audit import record
from dashboard.engine import EngineError

from .. import reference
from ..models import Image
from ..progress import StreamFollower, explain
from . import sync
from .common import Audit, checked, long_engine, probe_name, resync
from .registry import auth_for_job, registry_for_reference


def _image(job):
    row = Image.objects.select_related("host", "team").filter(pk=job.params["pk"]).first()
    if row is None:
        raise jobs.JobFailed("The image is no longer known to the dashboard.")
    return row


def _require(user, image, action):
    access.require(user, image, action)
    return image


# ---------------------------------------------------------------- tag


def request_tag(actor, image, target):
    access.require(actor.user, image, "tag")
    ref = reference.parse(target, allow_digest=False)
    if image.team is not None:
        sync.check_tag(actor.user, image.host, image.team, ref.tagged)
    elif not access.is_admin(actor.user):
        raise PermissionDenied("Only dashboard admins act on images nobody owns.")
    return jobs.enqueue(
        actor,
        "image.tag",
        host=image.host,
        target=image.name,
        params={"pk": image.pk, "tag": ref.tagged},
    )


@jobs.handler("image.tag", probe=probe_name)
def run_tag(job):
    image = _image(job)
    ref = reference.parse(job.params["tag"], allow_digest=False)
    audit = Audit(job, "image.tag", target=image)
    checked(audit, lambda: _require(job.user, image, "tag"))
    audit.open({"tag": ref.tagged})
    problem = ""
    try:
        with long_engine(image.host) as client:
            if image.team is not None:
                problem = sync.tag_owner_problem(
                    job.user, image.host, image.team, ref.tagged, client.api
                )
            if not problem:
                client.api.tag(image.docker_id, ref.repository, ref.tag or "latest")
    except EngineError as exc:
        audit.failed(exc.message)
        raise
    if problem:
        audit.failed(problem)
        raise jobs.JobFailed(problem)
    resync(image.host)
    audit.ok()
    return f"Tagged {image.short_id} as {ref.tagged}."


# ---------------------------------------------------------------- push


def request_push(actor, image, tag):
    access.require(actor.user, image, "push")
    if tag not in image.tags:
        raise PolicyError("tag", f"{tag!r} is not a tag of this image; tag it first.")
    ref = reference.parse(tag, allow_digest=False)
    registry = _push_registry(actor.user, image, ref)
    return jobs.enqueue(
        actor,
        "image.push",
        host=image.host,
        target=tag,
        params={"pk": image.pk, "tag": tag, "registry_id": registry.pk if registry else None},
    )


def _push_registry(user, image, ref):
    if image.team is None:
        if not access.is_admin(user):
            raise PermissionDenied("Only dashboard admins act on images nobody owns.")
        from registries.models import Registry
        from registries.services import match_registry

        return match_registry(str(ref), Registry.objects.all())
    return registry_for_reference(user, image.team, ref)


@jobs.handler("image.push", probe=probe_name)
def run_push(job):
    image = _image(job)
    tag = job.params["tag"]
    ref = reference.parse(tag, allow_digest=False)
    audit = Audit(job, "image.push", target=image)
    checked(audit, lambda: _require(job.user, image, "push"))

    def credentials():
        if image.team is None:
            registry = _push_registry(job.user, image, ref)
            from registries.services import auth_config_for

            return registry, (auth_config_for(registry) if registry else None)
        return auth_for_job(job.user, image.team, ref, job.params.get("registry_id"))

    registry, auth = checked(audit, credentials)
    audit.open({"tag": tag, "registry": registry.name if registry else None})
    error, follower = "", None
    try:
        with jobs.reporter(job) as out, long_engine(image.host) as client:
            # The tag must still name this image: pushing what it names now could
            # publish another team's image.
            if client.api.inspect_image(tag)["Id"] != image.docker_id:
                error = f"{tag} no longer names this image; nothing was pushed."
            else:
                follower = StreamFollower(out)
                try:
                    follower.feed_all(
                        client.api.push(
                            ref.repository,
                            tag=ref.tag or "latest",
                            stream=True,
                            decode=True,
                            auth_config=auth or {},
                        )
                    )
                except docker.errors.APIError as exc:
                    follower.error = str(exc.explanation or exc)
                if follower.error:
                    error = explain("Push", tag, follower.error)
    except EngineError as exc:
        error = explain("Push", tag, exc.message)
    if error:
        audit.failed(error)
        raise jobs.JobFailed(error)
    resync(image.host)
    digest = follower.digest if follower else ""
    audit.ok(f"digest {digest}" if digest else "")
    return f"Pushed {tag}" + (f" ({digest})." if digest else ".")


# ---------------------------------------------------------------- remove


def request_remove(actor, image, tag="", force=False):
    access.require(actor.user, image, "remove")
    if force:
        access.require(actor.user, image, "force_remove")
    if tag and tag not in image.tags:
        raise PolicyError("tag", f"{tag!r} is not a tag of this image.")
    return jobs.enqueue(
        actor,
        "image.remove",
        host=image.host,
        target=tag or image.name,
        params={"pk": image.pk, "tag": tag, "force": bool(force)},
    )


@jobs.handler("image.remove", probe=probe_name)
def run_remove(job):
    image = _image(job)
    tag, force = job.params.get("tag") or "", bool(job.params.get("force"))
    audit = Audit(job, "image.remove", target=image)
    checked(audit, lambda: _require(job.user, image, "remove"))
    if force:
        checked(audit, lambda: _require(job.user, image, "force_remove"))
    audit.open({"tag": tag, "force": force})
    admin = access.is_admin(job.user)
    problem = ""
    try:
        with long_engine(image.host) as client:
            users = sync.containers_using(image.host, image.docker_id, client.api)
            others = [
                name for _id, name, team_id in users if team_id != image.team_id or team_id is None
            ]
            if others and not admin:
                problem = (
                    f"Refused: the image is used by {len(others)} container(s) of another team "
                    "(or nobody's); only a dashboard admin can remove it."
                )
            elif users and not force and not tag:
                names = ", ".join(sorted(n for _id, n, _team in users)[:5])
                problem = f"The image is used by container(s) {names}; remove them first" + (
                    " or force the removal." if admin else "."
                )
            else:
                problem = _remove(client.api, image, tag, force)
    except EngineError as exc:
        message = exc.message
        if exc.status_code == 409:
            message = f"The engine refused: {exc.message}"
        audit.failed(message)
        raise jobs.JobFailed(message) from exc
    if problem:
        audit.failed(problem)
        raise jobs.JobFailed(problem)
    resync(image.host)
    audit.ok()
    return f"Removed {tag}." if tag else f"Removed image {image.name}."


def _remove(api, image, tag, force):
    if tag:
        if api.inspect_image(tag)["Id"] != image.docker_id:
            return f"{tag} no longer names this image; nothing was removed."
        api.remove_image(tag)
        return ""
    try:
        info = api.inspect_image(image.docker_id)
    except docker.errors.NotFound:
        return ""  # gone already (a rerun after a lost worker, or removed behind our back)
    if force:
        api.remove_image(image.docker_id, force=True)
        return ""
    # Untag each name that still points at this image, then the image itself: removing
    # by id alone is refused while it has names in several repositories.
    for name in info.get("RepoTags") or []:
        api.remove_image(name)
    try:
        api.remove_image(image.docker_id)
    except docker.errors.NotFound:
        pass  # the last untag removed it
    return ""


# ---------------------------------------------------------------- prune


def request_prune(actor, host):
    if not access.is_admin(actor.user):
        raise PermissionDenied("Only dashboard admins prune images.")
    access.require(actor.user, host, "view")
    return jobs.enqueue(actor, "image.prune", host=host, target=f"dangling images on {host.name}")


@jobs.handler("image.prune")
def run_prune(job):
    host = job.host
    audit = Audit(job, "image.prune", host=host, target=host.name, target_type="host")

    def admin_only():
        if not access.is_admin(job.user):
            raise PermissionDenied("Only dashboard admins prune images.")

    checked(audit, admin_only)
    audit.open()
    try:
        with long_engine(host) as client:
            result = client.api.prune_images(filters={"dangling": True})
    except EngineError as exc:
        audit.failed(exc.message)
        raise
    deleted = [d.get("Deleted") for d in result.get("ImagesDeleted") or [] if d.get("Deleted")]
    reclaimed = int(result.get("SpaceReclaimed") or 0)
    resync(host)
    message = f"Removed {len(deleted)} dangling image layer(s), {reclaimed / 1e6:.1f} MB."
    audit.ok(message)
    return message


# ---------------------------------------------------------------- assign, share


def share(actor, image, shared):
    """Mark an image a base every team of its host may see and build on (or not)."""
    access.require(actor.user, image, "share")
    Image.objects.filter(pk=image.pk).update(shared=bool(shared))
    image.shared = bool(shared)
    record(actor, "image.share", target=image, params={"shared": bool(shared)})
    return image
