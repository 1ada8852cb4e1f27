"""Stack pages. Views stay thin: access through dashboard.access, work through services."""

import difflib

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from containers.services import refresh_hosts
from containers.views import query_id
from dashboard import access
from dashboard.audit import Actor
from dashboard.engine import EngineError
from dashboard.models import Host, Job, Team

from . import gallery, git, logs, services
from .forms import EditForm, StackForm, TemplateDeployForm
from .models import Stack, StackContainer
from .policy import StackPolicyError

STACK_ACTIONS = ("start", "stop", "restart", "scale", "down", "redeploy", "pull")


def _stacks(user):
    return access.restrict(user, Stack.objects.present(), "view").select_related(
        "host", "team", "owner", "current_version"
    )


def _stack(request, pk, action="view"):
    return access.get_or_404(
        request.user,
        Stack.objects.present().select_related("host", "team", "owner", "current_version"),
        action,
        pk=pk,
    )


def stack_list(request):
    rows = list(_stacks(request.user))
    host_id = query_id(request, "host")
    if host_id is not None:
        rows = [s for s in rows if s.host_id == host_id]
    counts = {}
    for sc in StackContainer.objects.filter(
        stack__in=rows, container__removed_at__isnull=True
    ).values("stack_id", "container__state"):
        entry = counts.setdefault(sc["stack_id"], {"total": 0, "running": 0})
        entry["total"] += 1
        entry["running"] += sc["container__state"] == "running"
    return render(
        request,
        "stacks/list.html",
        {
            "rows": [(s, counts.get(s.pk, {"total": 0, "running": 0})) for s in rows],
            "can_create": access.creatable_teams(request.user).exists(),
            "external": services.external_projects(request.user),
            "teams": Team.objects.all() if access.is_admin(request.user) else [],
        },
    )


def _need_operator(request):
    if not access.creatable_teams(request.user).exists():
        raise PermissionDenied("You need the operator role in a team to deploy stacks.")


def stack_new(request):
    _need_operator(request)
    form = StackForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            stack, job = services.create_stack(
                Actor.from_request(request),
                host=data["host"],
                team=data["team"],
                name=data["name"],
                source=data["source"],
                compose_text=data["compose"] or "",
                env_text=data["env"] or "",
                **(
                    {
                        "git_url": data["git_url"],
                        "git_branch": data["git_branch"],
                        "git_path": data["git_path"],
                        "git_username": data["git_username"],
                        "git_password": data["git_password"],
                        "poll_minutes": data["poll_minutes"] or 0,
                    }
                    if data["source"] == Stack.Source.GIT
                    else {}
                ),
                registry=data.get("registry"),
            )
        except (StackPolicyError, git.GitError, EngineError) as exc:
            form.add_error(None, getattr(exc, "message", None) or str(exc))
        else:
            messages.info(request, f"Deploying stack {stack.name}: follow the job below.")
            return redirect("stacks:detail", pk=stack.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "stacks/new.html", {"form": form}, status=status)


def _services(stack):
    """{service: {"image", "build"}}: what the last deploy ran, else the newest file's."""
    if stack.deployed_services:
        return {name: dict(info) for name, info in stack.deployed_services.items()}
    out = {}
    for name in services.service_names(stack):
        out[name] = {"image": "", "build": False}
    return out


def stack_detail(request, pk):
    stack = _stack(request, pk)
    errors = refresh_hosts([stack.host])
    actions = access.allowed_actions(request.user, stack)
    members = list(
        StackContainer.objects.filter(
            stack=stack, container__removed_at__isnull=True
        ).select_related("container", "container__host")
    )
    services_info = _services(stack)
    for m in members:
        services_info.setdefault(m.service, {"image": m.container.image, "build": False})
    rows = []
    for name, info in services_info.items():
        containers = [m.container for m in members if m.service == name]
        running = sum(c.state == "running" for c in containers)
        rows.append({"name": name, **info, "containers": containers, "running": running})
    jobs = Job.objects.filter(params__stack_id=stack.pk).select_related("host", "user")[:8]
    latest = jobs[0] if jobs else None
    own_jobs = set(
        access.restrict(request.user, Job.objects.filter(pk__in=[j.pk for j in jobs])).values_list(
            "pk", flat=True
        )
    )
    version = stack.current_version
    env_keys = []
    if version is not None:
        env_keys = [line.partition("=")[0] for line in version.env.splitlines() if "=" in line]
    return render(
        request,
        "stacks/detail.html",
        {
            "stack": stack,
            "actions": actions,
            "services": rows,
            "jobs": jobs,
            "own_jobs": own_jobs,
            "latest": latest,
            "versions": stack.versions.select_related("created_by")[:50],
            "env_keys": env_keys,
            "host_error": errors.get(stack.host_id, ""),
        },
    )


@require_POST
def stack_action(request, pk, action):
    if action not in STACK_ACTIONS:
        raise Http404("No such stack action")
    need = "deploy" if action == "redeploy" else action
    stack = _stack(request, pk, need)
    actor = Actor.from_request(request)
    service = (request.POST.get("service") or "").strip()[:128]
    try:
        if action in ("redeploy", "pull"):
            job = services.request_deploy(actor, stack, action)
        else:
            replicas = None
            if action == "scale":
                value = (request.POST.get("replicas") or "").strip()
                replicas = int(value) if value.isdigit() and len(value) < 4 else None
            job = services.request_action(
                actor, stack, action, service, replicas, volumes=request.POST.get("volumes") == "on"
            )
    except StackPolicyError as exc:
        messages.error(request, exc.message)
        return redirect("stacks:detail", pk=stack.pk)
    messages.info(request, f"{action.capitalize()} of stack {stack.name} queued (job #{job.pk}).")
    return redirect("stacks:detail", pk=stack.pk)


def stack_edit(request, pk):
    stack = _stack(request, pk, "edit")
    if stack.source in (Stack.Source.GIT, Stack.Source.EXTERNAL):
        messages.error(request, "This stack's compose file is not kept here; it cannot be edited.")
        return redirect("stacks:detail", pk=stack.pk)
    current = stack.current_version
    initial = {"compose": current.compose if current else "", "env": current.env if current else ""}
    form = EditForm(request.POST or None, initial=initial)
    diff, env_changed, problem = None, False, ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        compose_text = data["compose"].replace("\r\n", "\n")
        env_text = (data["env"] or "").replace("\r\n", "\n")
        if request.POST.get("confirm") == "deploy":
            try:
                job = services.edit_stack(
                    Actor.from_request(request), stack, compose_text, env_text, data["note"]
                )
            except (StackPolicyError, EngineError) as exc:
                problem = getattr(exc, "message", None) or str(exc)
            else:
                messages.info(
                    request, f"Deploying the new version of {stack.name} (job #{job.pk})."
                )
                return redirect("stacks:detail", pk=stack.pk)
        else:
            diff = _diff(initial["compose"], compose_text, "deployed", "new")
            env_changed = initial["env"] != env_text
            try:
                services.precheck(
                    request.user,
                    stack.host,
                    stack.team,
                    compose_text,
                    env_text,
                    stack.project,
                    stack.template_slug,
                    stack=stack,
                )
            except (StackPolicyError, EngineError) as exc:
                problem = getattr(exc, "message", None) or str(exc)
    status = 422 if problem else 200
    return render(
        request,
        "stacks/edit.html",
        {
            "stack": stack,
            "form": form,
            "diff": diff,
            "env_changed": env_changed,
            "problem": problem,
        },
        status=status,
    )


def _diff(old, new, old_name, new_name):
    """Unified diff lines as (css class, text): escaped by the template."""
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""
    ):
        kind = "ctx"
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        lines.append((kind, line))
    return lines


def version_detail(request, pk, number):
    stack = _stack(request, pk)
    version = stack.versions.filter(number=number).select_related("created_by").first()
    if version is None:
        raise Http404("No such version")
    previous = stack.versions.filter(number__lt=number).first()
    diff = _diff(
        previous.compose if previous else "",
        version.compose,
        f"v{previous.number}" if previous else "empty",
        f"v{number}",
    )
    return render(
        request,
        "stacks/version.html",
        {
            "stack": stack,
            "version": version,
            "previous": previous,
            "diff": diff,
            "can_rollback": access.can(request.user, stack, "rollback"),
            # A compose file may hold environment values: like a container's, operators only.
            "show_file": access.can(request.user, stack, "reveal_env"),
        },
    )


@require_POST
def version_rollback(request, pk, number):
    stack = _stack(request, pk, "rollback")
    version = stack.versions.filter(number=number).first()
    if version is None:
        raise Http404("No such version")
    job = services.request_deploy(Actor.from_request(request), stack, "rollback", version)
    messages.info(request, f"Rolling {stack.name} back to version {number} (job #{job.pk}).")
    return redirect("stacks:detail", pk=stack.pk)


def stack_webhook_info(request, pk):
    stack = _stack(request, pk, "webhook")
    url = request.build_absolute_uri(reverse("stacks:webhook", args=[stack.webhook_uuid]))
    return render(
        request, "stacks/webhook.html", {"stack": stack, "url": url, "secret": stack.webhook_secret}
    )


@require_POST
def stack_webhook_rotate(request, pk):
    stack = _stack(request, pk, "webhook")
    services.rotate_webhook_secret(Actor.from_request(request), stack)
    messages.success(request, "New webhook secret: update it in your CI.")
    return redirect("stacks:webhook_info", pk=stack.pk)


def _is_id(text):
    return text.isascii() and text.isdigit() and 0 < len(text) <= 18


@require_POST
def adopt(request):
    """A dashboard admin adopts a compose project found on an engine (POST host, project, team)."""
    if not access.is_admin(request.user):
        raise PermissionDenied("Only dashboard admins may adopt a compose project.")
    host_id = request.POST.get("host") or ""
    team_id = request.POST.get("team") or ""
    project = (request.POST.get("project") or "").strip()[:64]
    # isdigit() alone takes "²", which int() refuses.
    host = Host.objects.filter(pk=int(host_id)).first() if _is_id(host_id) else None
    team = Team.objects.filter(pk=int(team_id)).first() if _is_id(team_id) else None
    if host is None or team is None or not project:
        messages.error(request, "Choose the project's host and a team.")
        return redirect("stacks:list")
    try:
        stack = services.adopt_project(Actor.from_request(request), host, project, team, project)
    except (StackPolicyError, EngineError) as exc:
        messages.error(request, getattr(exc, "message", None) or str(exc))
        return redirect("stacks:list")
    messages.success(request, f"Project {project} is now stack {stack.name} of team {team.name}.")
    return redirect("stacks:detail", pk=stack.pk)


@require_POST
def stack_delete(request, pk):
    stack = _stack(request, pk, "delete")
    try:
        services.delete_stack(Actor.from_request(request), stack)
    except StackPolicyError as exc:
        messages.error(request, exc.message)
        return redirect("stacks:detail", pk=stack.pk)
    messages.success(request, f"Stack {stack.name} deleted.")
    return redirect("stacks:list")


def stack_logs(request, pk):
    stack = _stack(request, pk, "logs")
    tail = query_id(request, "tail") or 200
    tail = min(tail, 2000)
    members = list(
        StackContainer.objects.filter(
            stack=stack, container__removed_at__isnull=True
        ).select_related("container", "container__host")
    )
    lines, error = [], ""
    try:
        lines = logs.interleaved(stack.host, members, tail)
    except EngineError as exc:
        error = exc.message
    return render(
        request,
        "stacks/logs.html",
        {"stack": stack, "lines": lines, "members": members, "error": error, "tail": tail},
    )


def template_list(request):
    return render(
        request,
        "stacks/templates.html",
        {
            "templates": gallery.templates().values(),
            "can_create": access.creatable_teams(request.user).exists(),
        },
    )


def template_deploy(request, slug):
    template = gallery.get(slug)
    if template is None:
        raise Http404("No such template")
    _need_operator(request)
    form = TemplateDeployForm(request.user, template, request.POST or None, initial={"name": slug})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            env_text, shown = gallery.env_from(template, form.values())
            stack, job = services.create_stack(
                Actor.from_request(request),
                host=data["host"],
                team=data["team"],
                name=data["name"],
                source=Stack.Source.TEMPLATE,
                compose_text=template["compose"],
                env_text=env_text,
                template_slug=slug,
                variables=shown,
            )
        except (StackPolicyError, EngineError) as exc:
            form.add_error(None, getattr(exc, "message", None) or str(exc))
        else:
            messages.info(request, f"Deploying {template['name']} as stack {stack.name}.")
            return redirect("stacks:detail", pk=stack.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "stacks/template_deploy.html", {"template": template, "form": form}, status=status
    )
