"""Stack jobs: deploy (and redeploy, pull, rollback, webhook), actions, down.

Every job holds its stack (`hold`): jobs of one stack queue behind each other and
never overlap. Each re-checks access, writes an audit intent before Compose runs
and completes it after; Compose's output streams to the job page.

Ownership: the containers of a stack are the ones its deploys created, recorded
by engine id from `docker-compose ps` of the project the dashboard chose. A
container is recorded only if it carries the stack's secret label (which compose
puts on every container of the project from the normalised file the dashboard
wrote) and was created after the job was queued. A container that merely carries
the project's label is foreign: Compose would act on it, so nothing runs until a
dashboard admin deals with it, and it is never given to the team.
"""

import json
import logging
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from containers import inspect
from containers.models import Container
from containers.policy import PolicyError
from containers.services import sync_host
from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, engine
from dashboard.models import AuditEntry, Job
from registries import services as registry_services
from resources.services import own_anonymous_volumes, sync_volumes

from . import compose, git, workdir
from .models import Stack, StackContainer, StackVersion
from .policy import StackPolicyError, check_config, check_files, load_yaml, parse_env

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STACK_LABEL = "dockyard.stack"
# The access action each job needs on the stack.
DEPLOY_ACTIONS = {"deploy", "redeploy", "pull", "rollback", "webhook", "poll"}
ACTIONS = ("start", "stop", "restart", "scale", "down")


# ---------------------------------------------------------------- holding a stack


@contextmanager
def hold(stack, job, out):
    """Run one job of a stack at a time: wait for the holder unless its job has ended."""
    deadline = time.monotonic() + settings.STACKS_QUEUE_WAIT_SECONDS
    said = False
    while True:
        if Stack.objects.filter(pk=stack.pk, running_job__isnull=True).update(running_job=job.pk):
            break
        holder = Stack.objects.filter(pk=stack.pk).values_list("running_job", flat=True).first()
        if holder == job.pk:
            break  # a rerun of this job after a lost worker
        alive = Job.objects.filter(
            pk=holder, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)
        ).exclude(status=Job.Status.RUNNING, lease_until__lt=timezone.now())
        if not alive.exists():
            # The holder ended without letting go (a crash): take it over, conditionally.
            if Stack.objects.filter(pk=stack.pk, running_job=holder).update(running_job=job.pk):
                break
            continue
        if not said:
            out.line(f"Waiting for job #{holder} of this stack to finish…")
            said = True
        if time.monotonic() > deadline:
            raise jobs.JobFailed(f"Job #{holder} of this stack is still running; try again later.")
        time.sleep(0.5)
    try:
        yield
    finally:
        Stack.objects.filter(pk=stack.pk, running_job=job.pk).update(running_job=None)


# ---------------------------------------------------------------- compose helpers


def _registries(job, stack, config=None):
    """(address, user, password) of the registries this run may log in to: those the
    job's user may use for the stack's team (and the stack's own push registry)."""
    usable = list(registry_services.registries_for(job.user, stack.team))
    images = [s.get("image") or "" for s in ((config or {}).get("services") or {}).values()]
    wanted = {r.pk for r in usable if any(registry_services.match_registry(i, [r]) for i in images)}
    if stack.registry_id and any(r.pk == stack.registry_id for r in usable):
        wanted.add(stack.registry_id)
    out = []
    for registry in usable:
        if registry.pk in wanted and registry.username:
            out.append((registry.address, registry.username, registry.password))
    return out


def _base_args(stack, file):
    args = ["--ansi", "never", "--progress", "plain", "-p", stack.project]
    if file is None:  # an adopted project, known by name only
        return args
    return [*args, "-f", str(file), "--env-file", str(workdir.env_path(stack))]


def _run(stack, env, file, args, out, check=True):
    out.line("$ docker-compose " + " ".join(args))
    return compose.run(
        [*_base_args(stack, file), *args],
        env=env,
        cwd=str(workdir.stack_dir(stack)),
        on_line=out.line,
        check=check,
    )


def normalise(stack, env, admin, user, version=None):
    """`docker-compose config` of the stack's files, checked by the policy (non-admins).

    An editor or template version the same user just checked in the form carries the
    model Compose made of these very files: it is used (its scratch paths moved to the
    stack's directory) instead of a second `config` run; the policy runs on it again.
    """
    path = workdir.compose_path(stack)
    if not path.is_file():
        raise StackPolicyError(f"There is no compose file at {stack.git_path or 'compose.yaml'}.")
    src = workdir.src_dir(stack)
    text = path.read_text(errors="replace")
    data = load_yaml(text)
    parse_env(workdir.env_path(stack).read_text())
    if not admin:
        check_files(data, str(path.parent), str(src))
    cached = _checked_model(stack, version, user)
    if cached is not None:
        if not admin:
            check_config(cached, user, stack.host, stack.team, str(src), stack.project)
        return cached
    # The model holds env values: it is read here, never streamed to the job page.
    try:
        _code, output = compose.run(
            [*_base_args(stack, path), "config", "--format", "json"],
            env=env,
            cwd=str(path.parent),
        )
    except compose.ComposeError as exc:
        raise StackPolicyError(f"Docker Compose cannot read the file: {exc.message}") from None
    config = json.loads(output[output.index("{") :])
    if not admin:
        check_config(config, user, stack.host, stack.team, str(src), stack.project)
    return config


def _checked_model(stack, version, user):
    if version is None or stack.source == Stack.Source.GIT or not version.checked_model_encrypted:
        return None
    if version.created_by_id != getattr(user, "pk", None) or version.deployed_at is not None:
        return None  # another user's check, or a rollback: Compose reads the files again
    model = json.loads(version.checked_model)
    root = model.pop("x-dockyard-checked-root", "")
    if not root:
        return None
    src = str(workdir.src_dir(stack))
    # Absolute paths Compose resolved under the scratch copy are the same files here.
    text = json.dumps(model).replace(json.dumps(root)[1:-1], json.dumps(src)[1:-1])
    return json.loads(text)


def label_services(stack, config):
    """Every container of the stack carries its secret label and the dashboard's labels."""
    for svc in (config.get("services") or {}).values():
        labels = svc.get("labels") or {}
        labels.update(settings.CONTAINER_LABELS)
        labels.update({STACK_LABEL: stack.container_nonce, "dockyard.managed": "true"})
        svc["labels"] = labels
    return config


def published_ports(config):
    """[(service, host_ip, port, proto)] of fixed host ports the file publishes."""
    found = []
    for name, svc in (config.get("services") or {}).items():
        for port in svc.get("ports") or []:
            published = str(port.get("published") or "")
            if not published:
                continue
            first, _, last = published.partition("-")
            if first.isdigit():
                for number in range(int(first), int(last or first) + 1):
                    found.append(
                        (name, port.get("host_ip") or "", number, port.get("protocol") or "tcp")
                    )
    return found


def check_ports(stack, config, api, own_ids):
    """A host port another container publishes is refused before anything changes.

    `stack` needs only `host` and `scale` (the form-time check passes a stand-in)."""
    taken = {}
    for c in api.containers():
        if c["Id"] in own_ids:
            continue
        for p in c.get("Ports") or []:
            if p.get("PublicPort"):
                taken[(p["PublicPort"], p.get("Type") or "tcp")] = c
    for name, svc in (config.get("services") or {}).items():
        replicas = (
            stack.scale.get(name)
            or (svc.get("deploy") or {}).get("replicas")
            or svc.get("scale")
            or 1
        )
        fixed = [p for p in svc.get("ports") or [] if p.get("published")]
        if fixed and int(replicas) > 1:
            raise StackPolicyError(
                f"{replicas} replicas cannot all publish host port {fixed[0]['published']}; "
                "leave the host port empty or run one replica.",
                name,
                "ports",
            )
    for name, _ip, number, proto in published_ports(config):
        if (number, proto) in taken:
            raise StackPolicyError(
                f"host port {number}/{proto} is already in use on {stack.host.name}.", name, "ports"
            )


def _project_containers(api, stack):
    return api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={stack.project}"})


def _restarted_since(api, stack, since, wanted):
    """The services of `wanted` whose every container is running, started at or after
    `since` (unix seconds)."""
    containers = {}
    for c in _project_containers(api, stack):
        name = (c.get("Labels") or {}).get(SERVICE_LABEL)
        if name in wanted:
            containers.setdefault(name, []).append(c["Id"])
    done = set()
    for name, ids in containers.items():
        states = [api.inspect_container(i)["State"] for i in ids]
        if all(
            st.get("Status") == "running"
            and (started := inspect.parse_time(st.get("StartedAt") or "")) is not None
            and started.timestamp() >= since
            for st in states
        ):
            done.add(name)
    return done


def reconcile(stack, job, api, out, strict=True, before=None):
    """Record the project's containers this job made; refuse to act beside others.

    Returns (ids of the stack's containers, ids of all the project's containers).
    `before` is the project's containers when this job began: none of them is new.
    Called first with `before=None`: on a first attempt nothing unrecorded is ours
    yet; on a rerun after a lost worker, the first attempt's containers are (they
    carry the stack's secret label and were created after the job was queued).
    With `strict`, a foreign container raises (Compose would act on it).
    """
    recorded = set(
        StackContainer.objects.filter(stack=stack).values_list("container__docker_id", flat=True)
    )
    listed = _project_containers(api, stack)
    if before is None and job.attempts <= 1:
        before = {c["Id"] for c in listed}
    before = before or set()
    ours, seen, foreign = set(), set(), []
    with transaction.atomic():  # one commit for all the records, not two per container
        for item in listed:  # the list entries carry labels and times: no inspect each
            docker_id = item["Id"]
            seen.add(docker_id)
            if docker_id in recorded:
                ours.add(docker_id)
                Container.objects.filter(host=stack.host, docker_id=docker_id).update(
                    **inspect.fields_from_list_entry(item), removed_at=None
                )
                continue
            if docker_id not in before:
                labels = item.get("Labels") or {}
                created = item.get("Created") or 0
                mine = labels.get(STACK_LABEL) == stack.container_nonce
                # A first attempt knows what was there before it (`before`); a rerun
                # also asks that the container be younger than the job (2 s for a
                # remote engine's clock).
                fresh = job.attempts <= 1 or created >= job.created_at.timestamp() - 2
                if mine and fresh:
                    _record(stack, job, api, item)
                    ours.add(docker_id)
                    continue
            foreign.append((item.get("Names") or ["/" + docker_id[:12]])[0].lstrip("/"))
        # The stack's containers Compose removed (recreated, scaled down, down) are gone.
        Container.objects.filter(stack_member__stack=stack, removed_at__isnull=True).exclude(
            docker_id__in=seen
        ).update(removed_at=timezone.now())
    if foreign:
        message = (
            f"Container(s) {', '.join(sorted(foreign))} carry this stack's compose project "
            "label but were not created by it. Docker Compose would act on them, so nothing "
            "was done; a dashboard admin can remove them."
        )
        if strict:
            raise jobs.JobFailed(message)
        out.line("Warning: " + message)
    return ours, seen


def _record(stack, job, api, item):
    """The container (a list entry) is the stack's: its team's, recorded by engine id."""
    fields = inspect.fields_from_list_entry(item)
    labels = item.get("Labels") or {}
    container, _ = Container.objects.update_or_create(
        host=stack.host,
        docker_id=item["Id"],
        defaults={**fields, "owner": job.user, "team": stack.team, "removed_at": None},
    )
    StackContainer.objects.update_or_create(
        container=container,
        defaults={"stack": stack, "service": labels.get(SERVICE_LABEL, ""), "job_id": job.pk},
    )
    own_anonymous_volumes(api, stack.host, stack.team, job.user, item, set())


def _claim_project_volumes(stack, job, api, config):
    """The stack's project volumes are the team's (made by this deploy, by their names)."""
    from resources.models import Volume

    if not config.get("volumes"):
        return
    sync_volumes(stack.host)
    for key, spec in (config.get("volumes") or {}).items():
        spec = spec or {}
        if spec.get("external"):
            continue
        name = spec.get("name") or f"{stack.project}_{key}"
        row = Volume.objects.present().filter(host=stack.host, name=name).first()
        if row is not None and row.team_id is None and not row.created_by_dashboard:
            info = api.inspect_volume(name)
            labels = info.get("Labels") or {}
            if labels.get(PROJECT_LABEL) == stack.project and _recent(info, job):
                Volume.objects.filter(pk=row.pk).update(
                    team=stack.team, owner=job.user, created_by_dashboard=True
                )


def _recent(info, job):
    created = inspect.parse_time(info.get("CreatedAt") or "")
    return created is not None and created >= job.created_at - timedelta(seconds=1)


# ---------------------------------------------------------------- deploy


def _check(job, stack, action):
    try:
        access.require(job.user, stack, action)
    except (PermissionDenied, Http404) as exc:
        record(
            Actor.from_job(job),
            f"stack.{job.params.get('action', action)}",
            target=stack,
            target_type="stack",
            result=AuditEntry.Result.DENIED,
            message=str(exc),
            job=job,
        )
        raise


def _load(job):
    stack = (
        Stack.objects.select_related("host", "team", "current_version")
        .filter(pk=job.params["stack_id"], removed_at__isnull=True)
        .first()
    )
    if stack is None:
        raise jobs.JobFailed("The stack no longer exists.")
    return stack


def _probe(job):
    stack = Stack.objects.filter(pk=job.params.get("stack_id")).first()
    if stack is None:
        return "no such stack"
    with engine(stack.host) as client:
        listed = _project_containers(client.api, stack)
    states = {}
    for c in listed:
        states[c.get("State", "?")] = states.get(c.get("State", "?"), 0) + 1
    return f"project {stack.project}: " + (
        ", ".join(f"{n} {s}" for s, n in states.items()) or "no containers"
    )


def _intent(actor, stack, job, action):
    """The audit intent of a stack job, written before Compose or the engine is asked."""
    return record(
        actor,
        f"stack.{action}",
        target=stack,
        target_type="stack",
        params={k: v for k, v in job.params.items() if k != "stack_id"},
        result=AuditEntry.Result.PENDING,
        job=job,
    )


@jobs.handler("stack.deploy", probe=_probe)
def run_deploy(job):
    stack = _load(job)
    action = job.params.get("action", "deploy")
    _check(job, stack, "deploy")
    actor = Actor.from_job(job)
    with jobs.reporter(job) as out, hold(stack, job, out):
        intent = _intent(actor, stack, job, action)
        try:
            version = _source_version(stack, job, out)
            summary = deploy_version(stack, version, job, out, action)
        except (
            StackPolicyError,
            compose.ComposeError,
            git.GitError,
            EngineError,
            jobs.JobFailed,
        ) as exc:
            message = getattr(exc, "message", None) or str(exc)
            intent.complete(AuditEntry.Result.FAILED, message)
            out.line("Failed: " + message)
            raise jobs.JobFailed(message) from exc
        intent.complete(AuditEntry.Result.OK, summary)
        out.line(summary)
    return summary


def _source_version(stack, job, out):
    """The version to deploy; for a git stack's webhook or poll, a fresh fetch first."""
    version_id = job.params.get("version_id")
    if stack.source == Stack.Source.GIT:
        if version_id:
            version = StackVersion.objects.get(pk=version_id, stack=stack)
            commit = version.commit or None
        else:
            version, commit = None, None
        out.line(f"Fetching {stack.git_branch} from {stack.git_url}…")
        head = git.checkout(
            str(workdir.src_dir(stack)),
            stack.git_url,
            stack.git_branch,
            stack.git_username,
            stack.git_password,
            commit=commit,
        )
        out.line(f"At commit {head}.")
        if version is None:
            version = _git_version(stack, job, head)
        return version
    if version_id:
        return StackVersion.objects.get(pk=version_id, stack=stack)
    if stack.current_version is None:
        raise jobs.JobFailed("The stack has no version to deploy.")
    return stack.current_version


def _git_version(stack, job, head):
    path = workdir.compose_path(stack)
    text = path.read_text(errors="replace") if path.is_file() else ""
    latest = stack.versions.first()
    if latest is not None and latest.commit == head and latest.compose == text:
        return latest
    env = latest.env if latest is not None else ""
    from .services import new_version

    trigger = job.params.get("action", "deploy")
    return new_version(
        stack, text, env, job.user, commit=head, note=f"{trigger}: commit {head[:12]}"
    )


def deploy_version(stack, version, job, out, action="deploy"):
    admin = access.is_admin(job.user)
    host = stack.host
    workdir.write_version(stack, version)
    first = not StackContainer.objects.filter(
        stack=stack, container__removed_at__isnull=True
    ).exists()
    with compose.environment(host, _registries(job, stack)) as env:
        config = normalise(stack, env, admin, job.user, version)
    config = label_services(stack, config)
    deployed = workdir.deployed_path(stack)
    workdir.write_private(deployed, json.dumps(config))
    with engine(host) as client:
        own, before = reconcile(stack, job, client.api, out)
        check_ports(stack, config, client.api, own)
    builds = [n for n, s in config["services"].items() if s.get("build")]
    scale = [f"--scale={n}={c}" for n, c in stack.scale.items() if n in config["services"]]
    with compose.environment(host, _registries(job, stack, config)) as env:
        if builds and action in ("webhook", "pull", "deploy", "redeploy", "poll", "rollback"):
            _run(stack, env, deployed, ["build", *builds], out)
            if stack.registry_id and action in ("webhook", "poll"):
                _push(stack, env, deployed, config, builds, out)
        pulling = action in ("pull", "webhook", "poll")
        if pulling and not admin:
            # A pull must not move a tag that names an image the team may not use.
            _check_images(stack, job, config, builds, admin, missing_ok=True)
        if action == "pull":
            _run(stack, env, deployed, ["pull", "--ignore-buildable"], out)
        elif action in ("webhook", "poll"):
            # Best effort: an image only this engine has (built here, loaded) is kept.
            pull = ["pull", "--ignore-buildable", "--ignore-pull-failures"]
            _run(stack, env, deployed, pull, out)
        if pulling:
            _own_pulled_images(stack, job, config, builds)
        _ensure_images(stack, env, deployed, config, builds, out)
        _check_images(stack, job, config, builds, admin)
        try:
            _run(stack, env, deployed, ["up", "-d", "--remove-orphans", *scale], out)
        except compose.ComposeError:
            with engine(host) as client:
                reconcile(stack, job, client.api, out, strict=False, before=before)
            if first:
                # "Nothing changed": a first deploy that failed leaves nothing behind.
                out.line("The deploy failed; removing what it created.")
                _run(stack, env, deployed, ["down", "-v", "--remove-orphans"], out, check=False)
                sync_host(host)
            raise
    with engine(host) as client:
        ids, _seen = reconcile(stack, job, client.api, out, strict=False, before=before)
        _claim_project_volumes(stack, job, client.api, config)
    now = timezone.now()
    StackVersion.objects.filter(pk=version.pk).update(deployed_at=now)
    summary = {
        name: {"image": svc.get("image") or "", "build": bool(svc.get("build"))}
        for name, svc in config["services"].items()
    }
    updates = {"current_version_id": version.pk, "deployed_services": summary}
    if version.commit:
        updates["git_commit"] = version.commit
    Stack.objects.filter(pk=stack.pk).update(**updates)
    where = f" (commit {version.commit[:12]})" if version.commit else ""
    return f"Deployed version {version.number}{where}: {len(ids)} container(s)."


def _ensure_images(stack, env, deployed, config, builds, out):
    """Pull the images the engine lacks first, so a bad name is a clear message and
    nothing is created (Compose would otherwise fail halfway through `up`)."""
    with engine(stack.host) as client:
        for name, svc in config["services"].items():
            image = svc.get("image")
            if name in builds or not image:
                continue
            try:
                client.api.inspect_image(image)
                continue
            except Exception as exc:
                if getattr(exc, "status_code", None) != 404:
                    raise
            try:
                _run(stack, env, deployed, ["pull", name], out)
            except compose.ComposeError as exc:
                raise StackPolicyError(
                    f"image {image!r} is not on {stack.host.name} and could not be pulled: "
                    f"{exc.message[-300:]}",
                    name,
                    "image",
                ) from exc


def _service_images(config, builds):
    for name, svc in config["services"].items():
        if name not in builds and svc.get("image"):
            yield name, svc["image"]


def _check_images(stack, job, config, builds, admin, missing_ok=False):
    """Every service runs an image the stack's team may use (its own or a shared one;
    any for a dashboard admin): the same check as the container form's, so a compose
    file cannot run another team's private image by name, id or digest. A missing
    image is pulled for the team (`image_use.pull_for_team`: the team's registry
    grant and credentials, recorded as the team's), or left for Compose when
    `missing_ok`."""
    from images.services import use as image_use

    for name, image in _service_images(config, builds):
        # Errors are raised outside `engine()`, which would wrap them as engine errors.
        try:
            _check_image(stack, image, admin)
            continue
        except image_use.ImageMissing:
            if missing_ok or admin:
                continue
        except PolicyError as exc:
            raise StackPolicyError(exc.message, name, "image") from None
        try:
            image_use.pull_for_team(job, stack.host, stack.team, image)
            _check_image(stack, image, admin)
        except PolicyError as exc:
            raise StackPolicyError(exc.message, name, "image") from None


def _check_image(stack, image, admin):
    from images.services import use as image_use

    refused = None
    with engine(stack.host) as client:
        try:
            image_use.check_image_use(client.api, stack.host, stack.team, image, admin)
        except PolicyError as exc:  # ImageMissing included
            refused = exc
    if refused is not None:
        raise refused


def _own_pulled_images(stack, job, config, builds):
    """Images this job's Compose pull brought (ids the host's image list has never seen)
    are the stack's team's, as a pull from the Images page would make them."""
    from images.models import Image
    from images.services import sync as image_sync

    with engine(stack.host) as client:
        for _name, image in _service_images(config, builds):
            try:
                docker_id = client.api.inspect_image(image)["Id"]
            except Exception as exc:  # not pulled (best-effort pulls): _ensure_images says so
                log.info("stack %s: %s not on the host after the pull: %s", stack.pk, image, exc)
                continue
            if not Image.objects.filter(host=stack.host, docker_id=docker_id).exists():
                image_sync.record_image(client.api, stack.host, docker_id, stack.team, job.user)


def _push(stack, env, deployed, config, builds, out):
    address = stack.registry.address
    pushable = [
        n for n in builds if (config["services"][n].get("image") or "").startswith(address + "/")
    ]
    if not pushable:
        out.line(f"No built image is named for registry {address}; nothing to push.")
        return
    _run(stack, env, deployed, ["push", *pushable], out)


# ---------------------------------------------------------------- actions


@jobs.handler("stack.action", probe=_probe)
def run_action(job):
    stack = _load(job)
    action = job.params["action"]
    if action not in ACTIONS:
        raise jobs.JobFailed(f"Unknown stack action {action!r}.")
    _check(job, stack, action)
    actor = Actor.from_job(job)
    service = job.params.get("service") or ""
    with jobs.reporter(job) as out, hold(stack, job, out):
        intent = _intent(actor, stack, job, action)
        try:
            summary = _act(stack, job, out, action, service)
        except (StackPolicyError, compose.ComposeError, EngineError, jobs.JobFailed) as exc:
            message = getattr(exc, "message", None) or str(exc)
            intent.complete(AuditEntry.Result.FAILED, message)
            out.line("Failed: " + message)
            raise jobs.JobFailed(message) from exc
        intent.complete(AuditEntry.Result.OK, summary)
        out.line(summary)
    return summary


def _act(stack, job, out, action, service):
    deployed = workdir.deployed_path(stack)
    if stack.source == Stack.Source.EXTERNAL:
        # An adopted project: Compose v2 acts on a project by its name alone.
        deployed = None
        config = {"services": stack.deployed_services}
        if action == "scale":
            raise StackPolicyError("An adopted project cannot be scaled without its file.")
    elif not deployed.is_file():
        raise jobs.JobFailed("The stack has not been deployed yet.")
    else:
        config = json.loads(deployed.read_text())
    if service and service not in (config.get("services") or {}):
        raise StackPolicyError(f"There is no service {service!r} in this stack.")
    host = stack.host
    with engine(host) as client:
        own, before = reconcile(stack, job, client.api, out)
    services = [service] if service else []
    if action == "restart" and job.attempts > 1:
        # A rerun after a lost worker: a restart is the one action that is not the same
        # done twice. Services the first run already restarted are not restarted again.
        wanted = services or list(config.get("services") or {})
        with engine(host) as client:
            done = _restarted_since(client.api, stack, job.created_at.timestamp(), wanted)
        services = [s for s in wanted if s not in done]
        if done:
            out.line("Restarted by the lost worker's run already: " + ", ".join(sorted(done)))
        if not services:
            return f"Restarted {f'service {service}' if service else 'all services'} (already)."
    with compose.environment(host, _registries(job, stack, config)) as env:
        if action in ("start", "stop", "restart"):
            _run(stack, env, deployed, [action, *services], out)
        elif action == "scale":
            replicas = int(job.params["replicas"])
            if replicas > 0:
                with engine(host) as client:
                    saved = dict(stack.scale)
                    stack.scale = {**saved, service: replicas}
                    try:
                        check_ports(stack, config, client.api, own)
                    finally:
                        stack.scale = saved
            args = [
                "up",
                "-d",
                "--no-deps",
                "--no-recreate",
                f"--scale={service}={replicas}",
                service,
            ]
            _run(stack, env, deployed, args, out)
            Stack.objects.filter(pk=stack.pk).update(scale={**stack.scale, service: replicas})
        elif action == "down":
            args = ["down", "--remove-orphans"] + (["-v"] if job.params.get("volumes") else [])
            _run(stack, env, deployed, args, out)
    with engine(host) as client:
        ids, _seen = reconcile(stack, job, client.api, out, strict=False, before=before)
    if action == "down" and job.params.get("volumes"):
        sync_volumes(host)
    what = f"service {service}" if service else "all services"
    if action == "scale":
        return (
            f"Scaled {service} to {job.params['replicas']}: {len(ids)} container(s) in the stack."
        )
    if action == "down":
        return "Stack is down" + (" and its volumes removed." if job.params.get("volumes") else ".")
    return f"{action.capitalize()}ed {what}." if action != "stop" else f"Stopped {what}."
