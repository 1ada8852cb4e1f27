"""Build: from a Dockerfile typed in the page or an uploaded context (tar or zip).

The view turns what the user sent into a clean context tar in the spool
(`images.context`: nothing on the server is ever read into it), then queues the job;
the worker streams that tar to the engine and the build output to the job page.
Build arguments may hold secrets: they travel in the job's encrypted parameters.
An image the Dockerfile builds on must be one the team may use: on the host, its
own or a shared base (another team's private image is refused); from a registry,
one granted to the team (or one the dashboard does not know).
"""

import re

import docker
from django.conf import settings

from containers.policy import PolicyError
from dashboard import access, jobs
from dashboard.engine import EngineError

from .. import context, reference
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
    probe_name,
    resync,
    spool_path,
)
from .registry import registry_for_reference

ARG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
TARGET_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
STEP_OUTPUT_CHARS = 3000


def parse_build_args(text):
    """KEY=VALUE lines → dict; raises PolicyError naming a bad line."""
    args = {}
    for n, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not ARG_NAME_RE.match(key.strip()):
            raise PolicyError(
                "build_args",
                f"Line {n} of the build arguments is not NAME=value (NAME: "
                "letters, digits and '_').",
            )
        args[key.strip()] = value
    return args


def check_bases(user, host, team, bases):
    """Refuse base images the team may not build on (see the module's docstring)."""
    if access.is_admin(user):
        return
    for text in bases:
        try:
            ref = reference.parse(text)
        except reference.BadReference as exc:
            raise PolicyError("dockerfile", f"FROM {text}: {exc}") from None
        registry_for_reference(user, team, ref)  # PolicyError when not granted
        name = f"{ref.repository}@{ref.digest}" if ref.digest else ref.tagged
        rows = [r for r in Image.objects.present().filter(host=host) if name in r.tags]
        for row in rows:
            if row.team_id != team.pk and not row.shared:
                raise PolicyError(
                    "dockerfile",
                    f"FROM {text}: that image on {host.name} is not your team's nor a shared "
                    "base image; ask a dashboard admin to share it.",
                )


def request_build(
    actor,
    host,
    team,
    *,
    tag,
    dockerfile_text="",
    upload=None,
    dockerfile="Dockerfile",
    build_args="",
    target="",
):
    """Make the context, check it, queue the build. Raises PolicyError / ContextError /
    BadReference with a message for the form."""
    access.require_host_for_team(actor.user, host, team, "create_image")
    ref = reference.parse(tag, allow_digest=False)
    args = parse_build_args(build_args)
    target = (target or "").strip()
    if target and not TARGET_RE.match(target):
        raise PolicyError("target", "A target is a stage name: letters, digits, '_', '.', '-'.")
    sync.refresh([host])
    sync.check_tag(actor.user, host, team, ref.tagged)
    token, out = new_spool()
    try:
        with out:
            if upload is not None:
                if upload.size > settings.IMAGE_BUILD_MAX_BYTES:
                    raise context.ContextError(
                        f"The upload is larger than the limit of "
                        f"{settings.IMAGE_BUILD_MAX_BYTES // 1_000_000} MB."
                    )
                parsed = context.from_upload(
                    upload,
                    out,
                    dockerfile=dockerfile,
                    max_bytes=settings.IMAGE_BUILD_MAX_BYTES,
                    build_args=args,
                )
                dockerfile = context.clean_name(dockerfile or "Dockerfile")
            else:
                parsed = context.from_dockerfile(dockerfile_text, out, build_args=args)
                dockerfile = "Dockerfile"
        if target and target.lower() not in parsed.stages:
            raise PolicyError("target", f"The Dockerfile has no stage named {target!r}.")
        check_bases(actor.user, host, team, parsed.base_images)
    except Exception:
        drop_spool(token)
        raise
    return jobs.enqueue(
        actor,
        "image.build",
        host=host,
        target=ref.tagged,
        params={
            "tag": ref.tagged,
            "team_id": team.pk,
            "spool": token,
            "dockerfile": dockerfile,
            "target": target,
            "bases": parsed.base_images,
            "build_arg_names": sorted(args),
        },
        secret={"build_args": args} if args else None,
    )


class _BuildOutput:
    """Build lines to the job page, remembering the current step and its output."""

    def __init__(self, out):
        self.out = out
        self.step = ""
        self.step_lines = []

    def line(self, text):
        if text.startswith("Step "):
            self.step, self.step_lines = text, []
        elif not text.startswith(" ---> "):
            self.step_lines.append(text)
        self.out.line(text)

    def progress(self, *args, **kwargs):
        self.out.progress(*args, **kwargs)

    def step_output(self):
        lines = [ln for ln in self.step_lines if not ln.startswith("ERROR: ")]
        return "\n".join(lines)[-STEP_OUTPUT_CHARS:]


@jobs.handler("image.build", probe=probe_name)
def run_build(job):
    host, team = job.host, job_team(job)
    params = job.params
    tagged = params["tag"]
    audit = Audit(job, "image.build", host=host, team=team, target=tagged, target_type="image")
    try:
        checked(audit, lambda: access.require_host_for_team(job.user, host, team, "create_image"))
        checked(audit, lambda: check_bases(job.user, host, team, params.get("bases") or []))
        args = jobs.secret_params(job).get("build_args") or {}
        audit.open(
            {
                "tag": tagged,
                "target": params.get("target") or "",
                "build_args": params.get("build_arg_names") or [],
            }
        )
        return _build(job, host, team, tagged, params, args, audit)
    finally:
        drop_spool(params.get("spool"))


def _build(job, host, team, tagged, params, args, audit):
    ref = reference.parse(tagged, allow_digest=False)
    error = problem = note = ""
    row = None
    context_path = spool_path(params["spool"])  # before the engine block: its refusal reads plain
    try:
        with jobs.reporter(job) as out, long_engine(host) as client:
            problem = sync.tag_owner_problem(job.user, host, team, ref.tagged, client.api)
            if not problem:
                build_out = _BuildOutput(out)
                follower = StreamFollower(build_out)
                try:
                    with open(context_path, "rb") as fh:
                        stream = client.api.build(
                            fileobj=fh,
                            custom_context=True,
                            tag=ref.tagged,
                            dockerfile=params.get("dockerfile") or "Dockerfile",
                            target=params.get("target") or None,
                            buildargs=args or None,
                            labels=dict(settings.CONTAINER_LABELS) or None,
                            rm=True,
                            forcerm=True,
                            decode=True,
                        )
                        follower.feed_all(stream)
                except FileNotFoundError:
                    error = "The build context is gone (the job ran before); queue the build again."
                except docker.errors.APIError as exc:
                    follower.error = str(exc.explanation or exc)
                if follower.error and not error:
                    step = build_out.step or "the build"
                    output = build_out.step_output()
                    error = f"Build failed at {step}: {follower.error}"
                    if output:
                        error += f"\nOutput of that step:\n{output}"
                elif not error:
                    docker_id = client.api.inspect_image(ref.tagged)["Id"]
                    row, note = sync.own_image(client.api, host, docker_id, team, job.user)
    except EngineError as exc:
        error = error or exc.message
    resync(host)
    if problem or error:
        audit.failed(problem or error)
        raise jobs.JobFailed(problem or error)
    audit.ok(note)
    return f"Built {ref.tagged} ({row.short_id}). {note}".strip()
