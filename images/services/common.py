"""What every image job shares: the engine client for long calls, the audit intent
pattern, the access re-check, and the spool where uploads wait for their job."""

import os
import re
import secrets
from contextlib import contextmanager

import docker
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from containers.policy import PolicyError
from dashboard import jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, engine
from dashboard.models import AuditEntry, Team

from . import sync

SPOOL_RE = re.compile(r"^[0-9a-f]{32}$")


@contextmanager
def long_engine(host):
    """The host's client for calls that move whole images (long read timeout).

    docker-py would add the credentials of this server's own `docker login`
    (~/.docker/config.json) to pulls, pushes and builds that name none: a team must
    never borrow them, so the client forgets them.
    """
    with engine(host, timeout=settings.IMAGE_JOB_TIMEOUT) as client:
        client.api._auth_configs = docker.auth.AuthConfig({})
        yield client


def job_team(job):
    team_id = job.params.get("team_id")
    return Team.objects.filter(pk=team_id).first() if team_id else None


class Audit:
    """An audit intent for one job: opened before the engine is asked, closed once."""

    def __init__(self, job, action, **where):
        self.job, self.action, self.where = job, action, where
        self.actor = Actor.from_job(job)
        self.entry = None

    def deny(self, exc):
        record(
            self.actor,
            self.action,
            result=AuditEntry.Result.DENIED,
            message=str(exc),
            job=self.job,
            **self.where,
        )

    def open(self, params=None):
        self.entry = record(
            self.actor,
            self.action,
            result=AuditEntry.Result.PENDING,
            params=params or {},
            job=self.job,
            **self.where,
        )
        return self.entry

    def ok(self, message=""):
        self.entry.complete(AuditEntry.Result.OK, message)

    def failed(self, message):
        self.entry.complete(AuditEntry.Result.FAILED, message)


def checked(audit, check):
    """Run an access/policy check in a handler; a refusal is audited as DENIED."""
    try:
        return check()
    except (PermissionDenied, Http404) as exc:
        audit.deny(exc)
        raise
    except PolicyError as exc:
        audit.deny(exc.message)
        raise jobs.JobFailed(exc.message) from None


def resync(host):
    """The host's image list right after a job: the page shows the change at once."""
    try:
        sync.sync_images(host)
    except EngineError:
        pass  # the next page view or periodic sync tries again


# ---------------------------------------------------------------- spool


def spool_dir():
    path = settings.IMAGE_SPOOL_DIR
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def new_spool():
    """(token, open binary file) for an upload that waits for its job."""
    token = secrets.token_hex(16)
    path = os.path.join(spool_dir(), f"{token}.tar")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return token, os.fdopen(fd, "w+b")


def spool_path(token):
    if not SPOOL_RE.match(token or ""):
        raise jobs.JobFailed("The job's upload is missing.")
    return os.path.join(spool_dir(), f"{token}.tar")


def drop_spool(token):
    try:
        os.remove(spool_path(token))
    except (FileNotFoundError, jobs.JobFailed):
        pass


def probe_tags(job):
    """An image load whose worker was lost: what the engine has under the archive's tags."""
    tags = job.params.get("tags") or []
    if not tags or job.host is None:
        return "nothing that tells (the archive names no tag)"
    said = []
    with engine(job.host) as client:
        for tag in tags[:5]:
            try:
                said.append(f"{tag} is image {client.api.inspect_image(tag)['Id'][7:19]}")
            except docker.errors.NotFound:
                said.append(f"no image {tag}")
    return "; ".join(said) + (f" (and {len(tags) - 5} more tags)" if len(tags) > 5 else "")


def probe_copy(job):
    """An image copy whose worker was lost: whether the target host has the image now."""
    from dashboard.models import Host

    from ..models import Image

    image = Image.objects.filter(pk=job.params.get("pk")).first()
    target = Host.objects.filter(pk=job.params.get("to_host")).first()
    if image is None or target is None:
        return "nothing that tells (the image or the target host is no longer known)"
    with engine(target) as client:
        try:
            client.api.inspect_image(image.docker_id)
        except docker.errors.NotFound:
            return f"no image {image.short_id} on {target.name}"
    return f"image {image.short_id} on {target.name}"


def probe_name(job):
    """What the engine reports of the name a job works on (for a job whose worker was
    lost): the image it names now, or that there is none."""
    name = job.params.get("reference") or job.params.get("tag") or ""
    if not name or job.host is None:
        return "nothing that tells (no image name)"
    with engine(job.host) as client:
        try:
            return f"{name} is image {client.api.inspect_image(name)['Id'][7:19]}"
        except docker.errors.NotFound:
            return f"no image {name}"
