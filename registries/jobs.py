"""Registry jobs run by the worker: deleting a tag (by digest), audited."""

from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.models import AuditEntry

from .client import RegistryClient, RegistryError
from .models import Registry
from .services import acting_team


def probe_tag(job):
    """What the registry says of the tag now (for a job whose worker was lost)."""
    registry = Registry.objects.filter(pk=job.params.get("registry")).first()
    if registry is None:
        return "nothing (the registry was removed from the dashboard)"
    ref = f"{job.params.get('repository')}:{job.params.get('tag')}"
    try:
        with RegistryClient(registry) as client:
            digest = client.head_digest(job.params.get("repository"), job.params.get("tag"))
    except RegistryError as exc:
        if exc.kind == RegistryError.NOT_FOUND:
            return f"{ref} is gone"
        return f"nothing: {exc.message}"
    return f"{ref} at {digest[:19]}…"


@jobs.handler("registry.delete_tag", probe=probe_tag)
def delete_tag(job):
    params = job.params
    registry = Registry.objects.filter(pk=params.get("registry")).first()
    if registry is None:
        raise jobs.JobFailed("The registry was removed from the dashboard; nothing was done.")
    # The role may have been revoked since the click.
    access.require(job.user, registry, "delete_tag")
    repository, tag, digest = params["repository"], params["tag"], params["digest"]
    ref = f"{repository}:{tag}"
    intent = record(
        Actor.from_job(job),
        "registry.delete_tag",
        team=acting_team(job.user, registry, "delete_tag"),
        target=f"{registry.name}/{ref}",
        target_type="registry",
        params={"registry": registry.name, "repository": repository, "tag": tag, "digest": digest},
        result=AuditEntry.Result.PENDING,
        job=job,
    )
    try:
        with RegistryClient(registry) as client, jobs.reporter(job) as out:
            out.line(f"Looking up {ref} on {registry.name} ({registry.address})")
            try:
                now = client.head_digest(repository, tag)
            except RegistryError as exc:
                if exc.kind != RegistryError.NOT_FOUND:
                    raise
                now = None
            if now is None:
                # A rerun after a lost worker lands here when the first run finished.
                out.line(f"{ref} is not in the registry (any more)")
                intent.complete(AuditEntry.Result.OK, f"{ref} is already gone.")
                return f"Tag {ref} is gone from {registry.name}."
            out.line(f"{ref} points at {now}")
            if now != digest:
                raise RegistryError(
                    RegistryError.BAD_RESPONSE,
                    f"Tag {ref} now points at {now[:19]}…, not the {digest[:19]}… you saw; "
                    "nothing was deleted. Look again and retry.",
                )
            out.line(f"Deleting manifest {digest} (every tag on it goes with it)")
            client.delete_manifest(repository, digest)
            out.line("Deleted")
    except RegistryError as exc:
        intent.complete(AuditEntry.Result.FAILED, exc.message)
        raise jobs.JobFailed(exc.message) from None
    message = f"Deleted {ref} ({digest[:19]}…) from {registry.name}."
    intent.complete(AuditEntry.Result.OK, message)
    return message
