"""Pull: by full reference or registry + repository + tag, with per-layer progress."""

import docker

from dashboard import access, jobs
from dashboard.engine import EngineError

from .. import reference
from ..progress import StreamFollower, explain
from . import sync
from .common import Audit, checked, job_team, long_engine, probe_name, resync
from .registry import auth_for_job, chosen_registry, registry_for_reference


def build_reference(user, team, *, text="", registry_id=None, repository="", tag=""):
    """(Reference, registry or None) from the pull form; raises BadReference/PolicyError."""
    if registry_id:
        registry = chosen_registry(user, team, registry_id)
        repository = (repository or "").strip().strip("/")
        if not repository:
            raise reference.BadReference("Name the repository to pull from the registry.")
        tag = reference.check_tag(tag) if (tag or "").strip() else "latest"
        ref = reference.parse(f"{registry.address}/{repository}:{tag}")
        if ref.domain.lower() != registry.address:
            raise reference.BadReference("Give the repository path only, without a registry.")
        return ref, registry
    ref = reference.parse(text)
    return ref, registry_for_reference(user, team, ref)


def request_pull(actor, host, team, ref, registry=None):
    """Queue a pull for `team` on `host` (the caller parsed and checked the reference)."""
    access.require_host_for_team(actor.user, host, team, "create_image")
    if not ref.digest:
        sync.check_tag(actor.user, host, team, ref.tagged)
    return jobs.enqueue(
        actor,
        "image.pull",
        host=host,
        target=str(ref),
        params={
            "reference": str(ref),
            "team_id": team.pk,
            "registry_id": registry.pk if registry else None,
        },
    )


def pull_into(api, ref, auth, out):
    """Pull `ref` with `auth` (None: anonymous), reporting progress; returns (image id,
    error message or "")."""
    follower = StreamFollower(out)
    try:
        stream = api.pull(
            ref.repository, tag=ref.pull_tag, stream=True, decode=True, auth_config=auth or {}
        )
        follower.feed_all(stream)
    except docker.errors.APIError as exc:
        follower.error = str(exc.explanation or exc)
    if follower.error:
        return "", follower.error
    name = f"{ref.repository}@{ref.digest}" if ref.digest else ref.tagged
    return api.inspect_image(name)["Id"], ""


@jobs.handler("image.pull", probe=probe_name)
def run_pull(job):
    host, team = job.host, job_team(job)
    ref = reference.parse(job.params["reference"])
    audit = Audit(job, "image.pull", host=host, team=team, target=str(ref), target_type="image")
    checked(audit, lambda: access.require_host_for_team(job.user, host, team, "create_image"))
    registry, auth = checked(
        audit, lambda: auth_for_job(job.user, team, ref, job.params.get("registry_id"))
    )
    audit.open({"reference": str(ref), "registry": registry.name if registry else None})
    error = note = problem = ""
    try:
        with jobs.reporter(job) as out, long_engine(host) as client:
            problem = (
                ""
                if ref.digest
                else sync.tag_owner_problem(job.user, host, team, ref.tagged, client.api)
            )
            if not problem:
                docker_id, error = pull_into(client.api, ref, auth, out)
                if not error:
                    row, note = sync.own_image(client.api, host, docker_id, team, job.user)
    except EngineError as exc:
        error = exc.message
    if problem:
        audit.failed(problem)
        raise jobs.JobFailed(problem)
    resync(host)
    if error:
        message = explain("Pull", ref, error)
        audit.failed(message)
        raise jobs.JobFailed(message)
    audit.ok(note)
    return f"Pulled {ref} ({row.short_id}). {note}".strip()
