"""Stack services: create stacks and versions, check files, queue jobs, write audit entries.

Views call these; the jobs (deploy.py) do the Docker work. Every request checks
access first and again in the job (a role may be revoked in between).
"""

import json
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from dashboard import access, jobs
from dashboard.audit import Actor, record
from dashboard.engine import EngineError, engine
from dashboard.models import AuditEntry, Host

from . import compose, git, workdir
from .models import Stack, StackContainer, StackVersion
from .policy import StackPolicyError, check_config, check_files, load_yaml, parse_env

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")


def new_project_name(name):
    """The compose project: the dashboard's choice, unique, with a random part."""
    base = re.sub(r"[^a-z0-9]+", "-", slugify(name).lower()).strip("-")[:30] or "stack"
    while True:
        project = f"dy-{base}-{secrets.token_hex(3)}"
        if not Stack.objects.filter(project=project).exists():
            return project


def check_name(host, name):
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise StackPolicyError(
            "A stack name has letters, digits, '_', '.' and '-', and starts with a letter "
            "or digit.",
            key="name",
        )
    if Stack.objects.present().filter(host=host, name=name).exists():
        raise StackPolicyError(
            f"There is already a stack named {name!r} on {host.name}.", key="name"
        )
    return name


def precheck(user, host, team, compose_text, env_text, project, template_slug="", stack=None):
    """Form-time check of a compose file: YAML, env file, policy, and Compose's own reading.

    Runs `docker-compose config` in a private scratch copy of what the stack's
    directory will hold; the job checks everything again before it deploys.
    Returns the normalised model; raises StackPolicyError.
    """
    admin = access.is_admin(user)
    data = load_yaml(compose_text)
    parse_env(env_text)
    scratch = Path(tempfile.mkdtemp(prefix="dockyard-stack-check-"))
    try:
        src = scratch / "src"
        if template_slug:
            context = workdir.TEMPLATES_DIR / template_slug / "context"
            if context.is_dir():
                shutil.copytree(context, src, symlinks=False)
        src.mkdir(exist_ok=True)
        workdir.write_private(src / "compose.yaml", compose_text)
        workdir.write_private(scratch / "stack.env", env_text)
        if not admin:
            check_files(data, str(src), str(src))
        with compose.environment(host) as env:
            try:
                _code, output = compose.run(
                    [
                        "-p",
                        project,
                        "-f",
                        str(src / "compose.yaml"),
                        "--env-file",
                        str(scratch / "stack.env"),
                        "config",
                        "--format",
                        "json",
                    ],
                    env=env,
                    cwd=str(src),
                    timeout=30,
                )
            except compose.ComposeError as exc:
                raise StackPolicyError(
                    f"Docker Compose cannot read the file: {exc.message}"
                ) from None
        config = json.loads(output[output.index("{") :])
        try:
            if not admin:
                check_config(config, user, host, team, str(src), project)
            _check_ports_now(host, config, stack)
        except EngineError as exc:
            raise StackPolicyError(exc.message) from None
        config["x-dockyard-checked-root"] = str(src)
        return config
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_ports_now(host, config, stack):
    """Host ports other containers publish now (the job checks again before `up`)."""
    from .deploy import check_ports

    own = set()
    if stack is not None:
        own = set(
            StackContainer.objects.filter(stack=stack).values_list(
                "container__docker_id", flat=True
            )
        )
    stand_in = stack or SimpleNamespace(host=host, scale={})
    with engine(host) as client:
        check_ports(stand_in, config, client.api, own)


def remember_check(version, config):
    """Keep the model the form's check normalised (encrypted: it holds env values), so
    the deploy job need not run `docker-compose config` again on the same files. The
    job still runs the whole policy on it."""
    if not config:
        return
    version.checked_model = json.dumps(config)
    version.save(update_fields=["checked_model_encrypted"])


def new_version(stack, compose_text, env_text, user, commit="", note="", variables=None):
    with transaction.atomic():
        last = stack.versions.aggregate(n=Max("number"))["n"] or 0
        version = StackVersion(
            stack=stack,
            number=last + 1,
            compose=compose_text,
            commit=commit,
            note=note[:255],
            created_by=user,
            variables=variables or {},
        )
        version.env = env_text
        version.save()
    return version


def create_stack(actor, *, host, team, name, source, compose_text="", env_text="", **extra):
    """Create a stack (and its first version) and queue its first deploy; returns (stack, job).

    `extra`: template_slug, variables; git_url, git_branch, git_path, git_username,
    git_password, poll_minutes; registry.
    """
    user = actor.user
    access.require_host_for_team(user, host, team)
    name = check_name(host, name)
    checked = None
    project = new_project_name(name)
    if source == Stack.Source.GIT:
        admin = access.is_admin(user)
        extra["git_url"] = git.check_url(extra.get("git_url"), admin)
        extra["git_branch"] = git.check_branch(extra.get("git_branch") or "main")
        extra["git_path"] = git.check_path(extra.get("git_path") or "compose.yaml")
        parse_env(env_text)
    else:
        checked = precheck(
            user, host, team, compose_text, env_text, project, extra.get("template_slug", "")
        )
    registry = extra.get("registry")
    if registry is not None:
        from registries.services import registries_for

        if not registries_for(user, team).filter(pk=registry.pk).exists():
            raise StackPolicyError(
                f"Registry {registry.name} is not one team {team.name} may use.", key="registry"
            )
    password = extra.pop("git_password", "")
    variables = extra.pop("variables", None)
    with transaction.atomic():
        stack = Stack(
            name=name,
            host=host,
            team=team,
            owner=user,
            project=project,
            container_nonce=secrets.token_hex(16),
            source=source,
            **{k: v for k, v in extra.items() if v is not None},
        )
        stack.webhook_secret = secrets.token_urlsafe(32)
        if password:
            stack.git_password = password
        stack.save()
        version = None
        if source != Stack.Source.GIT:
            version = new_version(
                stack, compose_text, env_text, user, note="created", variables=variables
            )
            remember_check(version, checked)
        elif env_text:
            # A git stack's env file lives with the dashboard, not in the repository.
            version = new_version(stack, "", env_text, user, note="env file")
        record(
            actor,
            "stack.create",
            target=stack,
            target_type="stack",
            params={"source": source, "project": project, **_safe(extra)},
        )
        params = {"stack_id": stack.pk, "action": "deploy"}
        if version is not None and source != Stack.Source.GIT:
            params["version_id"] = version.pk
        job = jobs.enqueue(actor, "stack.deploy", host=host, target=f"stack {name}", params=params)
    return stack, job


def _safe(extra):
    """Parameters fit for the audit log (no password; the URL carries none)."""
    return {
        k: str(v)
        for k, v in extra.items()
        if k in ("template_slug", "git_url", "git_branch", "git_path", "poll_minutes")
    }


def edit_stack(actor, stack, compose_text, env_text, note=""):
    """A new version from the editor (checked now and again by the job), deployed by a job."""
    access.require(actor.user, stack, "edit")
    if stack.source == Stack.Source.GIT:
        raise StackPolicyError("A git stack's compose file changes with a commit, not here.")
    if stack.source == Stack.Source.EXTERNAL:
        raise StackPolicyError("An adopted project has no compose file here to edit.")
    checked = precheck(
        actor.user,
        stack.host,
        stack.team,
        compose_text,
        env_text,
        stack.project,
        stack.template_slug,
        stack=stack,
    )
    version = new_version(stack, compose_text, env_text, actor.user, note=note or "edited")
    remember_check(version, checked)
    return request_deploy(actor, stack, "redeploy", version)


def request_deploy(actor, stack, action="deploy", version=None):
    if stack.source == Stack.Source.EXTERNAL:
        raise StackPolicyError(
            "An adopted project has no compose file here: start, stop, restart or take it down."
        )
    need = "rollback" if action == "rollback" else ("pull" if action == "pull" else "deploy")
    access.require(actor.user, stack, need)
    params = {"stack_id": stack.pk, "action": action}
    if version is not None:
        params["version_id"] = version.pk
        params["version"] = version.number
    return jobs.enqueue(
        actor, "stack.deploy", host=stack.host, target=f"stack {stack.name}", params=params
    )


def request_action(actor, stack, action, service="", replicas=None, volumes=False):
    access.require(actor.user, stack, action)
    services = service_names(stack)
    if service and service not in services:
        raise StackPolicyError(f"There is no service {service!r} in this stack.")
    if action == "scale":
        if not service:
            raise StackPolicyError("Choose the service to scale.")
        if replicas is None or not 0 <= replicas <= 50:
            raise StackPolicyError("Replicas must be a number from 0 to 50.")
    params = {"stack_id": stack.pk, "action": action, "service": service}
    if action == "scale":
        params["replicas"] = replicas
    if action == "down":
        params["volumes"] = bool(volumes)
    return jobs.enqueue(
        actor, "stack.action", host=stack.host, target=f"stack {stack.name}", params=params
    )


def request_webhook_deploy(stack, source_ip, delivery, commit=""):
    """A signed webhook call: a deploy as the stack's owner (the job re-checks their role)."""
    actor = Actor(stack.owner, source_ip)
    params = {"stack_id": stack.pk, "action": "webhook", "delivery": delivery[:128]}
    if commit:
        params["pushed_commit"] = commit[:40]
    return jobs.enqueue(
        actor, "stack.deploy", host=stack.host, target=f"stack {stack.name}", params=params
    )


def rotate_webhook_secret(actor, stack):
    access.require(actor.user, stack, "webhook")
    stack.webhook_secret = secrets.token_urlsafe(32)
    stack.save(update_fields=["webhook_secret_encrypted"])
    record(actor, "stack.webhook_rotate", target=stack, target_type="stack")


def delete_stack(actor, stack):
    """Forget a stack that is down (its containers are gone); its history stays in the audit log."""
    access.require(actor.user, stack, "delete")
    live = StackContainer.objects.filter(stack=stack, container__removed_at__isnull=True)
    if live.exists():
        raise StackPolicyError("Take the stack down before deleting it.")
    if stack.running_job:
        raise StackPolicyError("A job of this stack is still running.")
    Stack.objects.filter(pk=stack.pk).update(removed_at=timezone.now())
    workdir.remove(stack)
    record(actor, "stack.delete", target=stack, target_type="stack")


def service_names(stack):
    """Services of the last deploy, else of the newest version's file."""
    if stack.deployed_services:
        return list(stack.deployed_services)
    version = stack.current_version or stack.versions.first()
    if version is not None and version.compose:
        try:
            return list(load_yaml(version.compose).get("services") or {})
        except StackPolicyError:
            pass
    return []


def external_projects(user):
    """Compose projects on engines that no stack of the dashboard made (admins only)."""
    if not access.is_admin(user):
        return []
    known = set(Stack.objects.present().values_list("project", flat=True))
    found = []
    for host in Host.objects.all():
        try:
            with engine(host, timeout=3) as client:
                listed = client.api.containers(
                    all=True, filters={"label": "com.docker.compose.project"}
                )
        except EngineError:
            continue
        projects = {}
        for c in listed:
            project = (c.get("Labels") or {}).get("com.docker.compose.project", "")
            if project and project not in known:
                entry = projects.setdefault(
                    project, {"host": host, "project": project, "containers": 0, "running": 0}
                )
                entry["containers"] += 1
                entry["running"] += c.get("State") == "running"
        found.extend(projects.values())
    return sorted(found, key=lambda p: (p["host"].name, p["project"]))


def adopt_project(actor, host, project, team, name):
    """A dashboard admin makes a compose project found on `host` a stack of `team`.

    Its containers now are the team's (the admin's decision, audited); any container
    that joins the project later is foreign until an admin acts again.
    """
    from django.core.exceptions import PermissionDenied

    if not access.is_admin(actor.user):
        raise PermissionDenied("Only dashboard admins may adopt a compose project.")
    name = check_name(host, name)
    if Stack.objects.filter(project=project).exists():
        raise StackPolicyError(f"Project {project!r} is already a stack.")
    label = {"label": f"com.docker.compose.project={project}"}
    with engine(host) as client:
        listed = client.api.containers(all=True, filters=label)
    if not listed:
        raise StackPolicyError(f"There is no compose project {project!r} on {host.name}.")
    from containers import inspect as container_inspect
    from containers.models import Container

    with transaction.atomic():
        stack = Stack(
            name=name,
            host=host,
            team=team,
            owner=actor.user,
            project=project,
            container_nonce=secrets.token_hex(16),
            source=Stack.Source.EXTERNAL,
        )
        stack.webhook_secret = secrets.token_urlsafe(32)
        services = {}
        stack.save()
        for item in listed:
            labels = item.get("Labels") or {}
            service = labels.get("com.docker.compose.service", "")
            services[service] = {"image": item.get("Image") or "", "build": False}
            container, _ = Container.objects.update_or_create(
                host=host,
                docker_id=item["Id"],
                defaults={**container_inspect.fields_from_list_entry(item), "team": team},
            )
            StackContainer.objects.update_or_create(
                container=container, defaults={"stack": stack, "service": service}
            )
        Stack.objects.filter(pk=stack.pk).update(deployed_services=services)
        record(
            actor,
            "stack.adopt",
            target=stack,
            target_type="stack",
            params={"project": project, "containers": [c["Id"][:12] for c in listed]},
        )
    return stack


def audit_denied(actor, stack, action, message):
    record(
        actor,
        f"stack.{action}",
        target=stack,
        target_type="stack",
        result=AuditEntry.Result.DENIED,
        message=message,
    )
