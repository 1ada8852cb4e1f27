"""May a team run (or compose) a container from this image? The one check for it.

Containers and stacks call `check_image_use` with the reference a user typed. The
engine resolves it (tag, `repo@sha256:…`, image id or id prefix) to an image id —
a name is only what the engine says it points at now; the id is what would run —
and the host's mirror row for that id decides: the team's own image or a shared
base image may be used, anything else (another team's, or one nobody owns yet)
only by a dashboard admin. The refusal is the same for another team's image and
for an unowned one and never says whose it is.

`pull_for_team` is the pull a create job does for an image the host lacks: the
images app's own pull (the team's granted registry credentials, never this
server's `docker login`), recorded as the team's image and audited as a pull.
"""

import docker

from containers.policy import PolicyError
from dashboard import access, jobs
from dashboard.engine import EngineError, engine

from .. import reference
from ..models import Image
from ..progress import explain
from . import sync
from .common import Audit, long_engine
from .pull import pull_into
from .registry import auth_for_job


class ImageMissing(PolicyError):
    """The host has no image by that reference (a job may pull it for the team)."""


def refusal(reference_text, team, host):
    return (
        f"Image {reference_text} is not one of {team.name}'s images on {host.name}: "
        "pull it for your team on the Images page, or ask a dashboard admin to share it."
    )


def resolve(api, host, reference_text):
    """The mirror row of the image `reference_text` names on the engine now (recorded,
    unowned, when the mirror has not seen it yet); ImageMissing when there is none."""
    try:
        docker_id = api.inspect_image(reference_text)["Id"]
    except docker.errors.NotFound:
        raise ImageMissing("image", f"Image {reference_text} is not on {host.name}.") from None
    row = Image.objects.present().filter(host=host, docker_id=docker_id).first()
    if row is None:
        row = sync.record_image(api, host, docker_id)
    return row


def allowed(row, team, admin):
    return admin or row.shared or (team is not None and row.team_id == team.pk)


def check_image_use(api, host, team, reference_text, admin):
    """The mirror row of the image `team` may use; PolicyError("image", …) otherwise.

    `api` is a docker-py APIClient (or a DockerClient: its `.api` is used). Raises
    ImageMissing (a PolicyError) when the engine has no such image, so a caller may
    pull it for the team and check again.
    """
    api = getattr(api, "api", api)
    row = resolve(api, host, reference_text)
    if not allowed(row, team, admin):
        raise PolicyError("image", refusal(reference_text, team, host))
    return row


def check_on_host(host, team, reference_text, admin):
    """`check_image_use` with its own engine client, for forms (early feedback; the
    worker decides again). Returns the row, or None when the host lacks the image (a
    job may pull it). PolicyError leaves as itself, not wrapped in EngineError as
    everything raised inside `engine()` is; EngineError when the engine fails."""
    refused = None
    with engine(host) as client:
        try:
            return check_image_use(client.api, host, team, reference_text, admin)
        except ImageMissing:
            return None
        except PolicyError as exc:
            refused = exc
    raise refused


def check_image_id(api, host, team, docker_id, reference_text, admin):
    """Re-check an id the engine used (a tag may have moved after `check_image_use`)."""
    row = Image.objects.present().filter(host=host, docker_id=docker_id).first()
    if row is None:
        row = sync.record_image(getattr(api, "api", api), host, docker_id)
    if not allowed(row, team, admin):
        raise PolicyError("image", refusal(reference_text, team, host))
    return row


def pull_for_team(job, host, team, reference_text):
    """Pull a missing image for `team` inside `job`, as the Images page's pull would:
    the job user's right to pull for the team, the registry grant and its credentials
    re-checked now, a tag that names someone else's image refused, progress on the
    job page, the result recorded as the team's. Returns the image row; raises
    PolicyError (refused) or EngineError (the pull failed)."""
    try:
        ref = reference.parse(reference_text)
    except reference.BadReference as exc:
        raise PolicyError("image", str(exc)) from None
    try:
        access.require_host_for_team(job.user, host, team, "create_image")
    except Exception:
        raise PolicyError(
            "image",
            f"Image {reference_text} is not on {host.name} and your role cannot pull images "
            f"for {team.name}.",
        ) from None
    registry, auth = auth_for_job(job.user, team, ref, None)  # PolicyError if not granted
    audit = Audit(job, "image.pull", host=host, team=team, target=str(ref), target_type="image")
    with long_engine(host) as client:
        tagged = "" if ref.digest else ref.tagged
        problem = tagged and sync.tag_owner_problem(job.user, host, team, tagged, client.api)
    if problem:
        audit.deny(problem)
        raise PolicyError("image", problem)
    audit.open({"reference": str(ref), "registry": registry.name if registry else None})
    error = note = ""
    try:
        with long_engine(host) as client:
            with jobs.reporter(job) as out:
                out.line(f"Pulling {ref} for team {team.name}…")
                docker_id, error = pull_into(client.api, ref, auth, out)
            if not error:
                row, note = sync.own_image(client.api, host, docker_id, team, job.user)
    except EngineError as exc:
        error = exc.message
    if error:
        message = explain("Pull", ref, error)
        audit.failed(message)
        raise EngineError(message)
    audit.ok(note)
    return row
