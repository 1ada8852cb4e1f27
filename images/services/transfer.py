"""Export (a streamed download), import (load an uploaded archive), copy to another host.

Images move as the engine's own `docker save` archives, streamed in chunks: an
export goes from the engine to the browser, a copy from one engine's save straight
into the other's load (a generator feeding a chunked upload), so memory stays at
a chunk whatever the image's size, and nothing of it lands on the server's disk.
"""

import json
import tarfile

from django.conf import settings

from containers.policy import PolicyError
from dashboard import access, jobs
from dashboard.audit import record
from dashboard.engine import EngineError, engine

from .. import reference
from ..models import Image
from ..progress import StreamFollower
from . import sync
from .common import (
    Audit,
    checked,
    drop_spool,
    job_team,
    long_engine,
    new_spool,
    probe_copy,
    probe_tags,
    resync,
    spool_path,
)

CHUNK = 1 << 20


def _mb(n):
    return f"{n // 1_000_000} MB"


# ---------------------------------------------------------------- export


def export_chunks(actor, image):
    """Audited; returns an iterator of the `docker save` archive of the image (by id)."""
    access.require(actor.user, image, "export")
    record(actor, "image.export", target=image)
    with engine(image.host, timeout=settings.IMAGE_JOB_TIMEOUT) as client:
        chunks = client.api.get_image(image.docker_id, chunk_size=CHUNK)
    return _guarded(image.host, chunks)


def _guarded(host, chunks):
    try:
        yield from chunks
    except Exception as exc:  # the download is already under way: log, end it short
        import logging

        logging.getLogger(__name__).warning("export from %s broke off: %r", host.name, exc)


# ---------------------------------------------------------------- import (load)


def archive_tags(fh):
    """The RepoTags a `docker save` archive carries (its manifest.json); PolicyError when
    the upload is not such an archive. An archive with two manifests is refused: the
    engine would obey the last one, this check might read the other."""
    manifests = []
    try:
        with tarfile.open(fileobj=fh, mode="r:*") as archive:
            for member in archive:
                if member.name.lstrip("./") != "manifest.json":
                    continue
                if not member.isreg() or member.size > 10_000_000 or manifests:
                    manifests.append(None)  # refused below: not one plain, small manifest
                    break
                manifests.append(json.load(archive.extractfile(member)))
    except (tarfile.TarError, EOFError, OSError, ValueError, AttributeError):
        raise PolicyError(
            "archive", "The upload is not a tar archive made by `docker save`."
        ) from None
    finally:
        fh.seek(0)
    if not manifests:
        raise PolicyError(
            "archive",
            "The upload is a tar archive but not one made by `docker save` (no manifest.json).",
        )
    if None in manifests:
        raise PolicyError(
            "archive", "The archive's manifest.json is not one plain file of a sane size."
        )
    tags = []
    for entry in manifests[0] if isinstance(manifests[0], list) else []:
        tags += [str(t) for t in (entry.get("RepoTags") if isinstance(entry, dict) else None) or []]
    return tags


def _check_tags(user, host, team, tags):
    for tag in tags:
        try:
            ref = reference.parse(tag, allow_digest=False)
        except reference.BadReference as exc:
            raise PolicyError("archive", f"The archive names an image {tag!r}: {exc}") from None
        sync.check_tag(user, host, team, ref.tagged)


def request_load(actor, host, team, upload):
    access.require_host_for_team(actor.user, host, team, "create_image")
    if upload.size > settings.IMAGE_IMPORT_MAX_BYTES:
        raise PolicyError(
            "archive",
            f"The upload is larger than the limit of {_mb(settings.IMAGE_IMPORT_MAX_BYTES)}.",
        )
    tags = archive_tags(upload)
    sync.refresh([host])
    _check_tags(actor.user, host, team, tags)
    token, out = new_spool()
    try:
        with out:
            for chunk in upload.chunks(CHUNK):
                out.write(chunk)
    except Exception:
        drop_spool(token)
        raise
    return jobs.enqueue(
        actor,
        "image.load",
        host=host,
        target=", ".join(tags)[:200] or "image archive",
        params={"team_id": team.pk, "spool": token, "tags": tags},
    )


@jobs.handler("image.load", probe=probe_tags)
def run_load(job):
    host, team = job.host, job_team(job)
    token = job.params.get("spool")
    audit = Audit(job, "image.load", host=host, team=team, target=job.target, target_type="image")
    try:
        checked(audit, lambda: access.require_host_for_team(job.user, host, team, "create_image"))
        tags = job.params.get("tags") or []
        audit.open({"tags": tags})
        return _load(job, host, team, token, tags, audit)
    finally:
        drop_spool(token)


def _load(job, host, team, token, tags, audit):
    error, rows = "", []
    archive_path = spool_path(token)
    try:
        with jobs.reporter(job) as out, long_engine(host) as client:
            for tag in tags:
                problem = sync.tag_owner_problem(job.user, host, team, tag, client.api)
                if problem:
                    error = problem
                    break
            if not error:
                follower = StreamFollower(out)
                with open(archive_path, "rb") as fh:
                    follower.feed_all(client.api.load_image(fh))
                error = follower.error
                if not error:
                    ids = [follower.image_id] if follower.image_id else []
                    ids += [client.api.inspect_image(name)["Id"] for name in follower.loaded]
                    for docker_id in dict.fromkeys(ids):
                        rows.append(sync.own_image(client.api, host, docker_id, team, job.user))
    except FileNotFoundError:
        error = "The uploaded archive is gone (the job ran before); upload it again."
    except EngineError as exc:
        error = exc.message
    resync(host)
    if error:
        audit.failed(error)
        raise jobs.JobFailed(error)
    notes = " ".join(sorted({note for _row, note in rows if note}))
    audit.ok(notes)
    names = ", ".join(row.name for row, _ in rows) or "nothing"
    return f"Loaded {names}. {notes}".strip()


# ---------------------------------------------------------------- copy to another host


def request_copy(actor, image, target_host):
    access.require(actor.user, image, "copy")
    if target_host.pk == image.host_id:
        raise PolicyError("host", "Pick another host: the image is on this one already.")
    _check_target(actor.user, image, target_host)
    sync.refresh([target_host])
    if image.team is not None:
        _check_tags(actor.user, target_host, image.team, image.tags)
    return jobs.enqueue(
        actor,
        "image.copy",
        host=image.host,
        target=f"{image.name} → {target_host.name}",
        params={"pk": image.pk, "to_host": target_host.pk},
    )


def _check_target(user, image, target_host):
    if image.team is None:
        if not access.is_admin(user):
            raise PolicyError("host", "Only dashboard admins copy images nobody owns.")
        access.require(user, target_host, "view")
    else:
        access.require_host_for_team(user, target_host, image.team, "create_image")


@jobs.handler("image.copy", probe=probe_copy)
def run_copy(job):
    from dashboard.models import Host

    image = Image.objects.select_related("host", "team").filter(pk=job.params["pk"]).first()
    target = Host.objects.filter(pk=job.params.get("to_host")).first()
    if image is None or target is None:
        raise jobs.JobFailed("The image or the target host is no longer known to the dashboard.")
    audit = Audit(job, "image.copy", target=image)
    checked(audit, lambda: access.require(job.user, image, "copy"))
    checked(audit, lambda: _check_target(job.user, image, target))
    audit.open({"to_host": target.name})
    error, note = "", ""
    try:
        with jobs.reporter(job) as out, long_engine(image.host) as src, long_engine(target) as dst:
            tags = src.api.inspect_image(image.docker_id).get("RepoTags") or []
            if image.team is not None:
                for tag in tags:
                    error = error or sync.tag_owner_problem(
                        job.user, target, image.team, tag, dst.api
                    )
            if not error:
                out.line(f"Copying {image.name} from {image.host.name} to {target.name}")
                sent = _Counter(out, image.size)
                follower = StreamFollower(out)
                chunks = src.api.get_image(image.docker_id, chunk_size=CHUNK)
                follower.feed_all(dst.api.load_image(sent.wrap(chunks)))
                error = follower.error
            if not error:
                for tag in tags:
                    repo, _, name_tag = tag.rpartition(":")
                    dst.api.tag(image.docker_id, repo, name_tag)
                team = image.team
                _row, note = (
                    sync.own_image(dst.api, target, image.docker_id, team, job.user)
                    if team is not None
                    else (sync.record_image(dst.api, target, image.docker_id), "")
                )
                out.progress("copy", status="Done", current=sent.total, total=sent.total or 1)
    except EngineError as exc:
        error = exc.message
    resync(target)
    if error:
        audit.failed(error)
        raise jobs.JobFailed(error)
    audit.ok(note)
    return f"Copied {image.name} to {target.name}. {note}".strip()


class _Counter:
    """Counts the archive's bytes on their way through, as a progress bar."""

    def __init__(self, out, expected):
        self.out, self.expected, self.total = out, max(int(expected or 0), 1), 0

    def wrap(self, chunks):
        for chunk in chunks:
            self.total += len(chunk)
            self.out.progress(
                "copy",
                status="Sending",
                current=min(self.total, self.expected),
                total=self.expected,
            )
            yield chunk
