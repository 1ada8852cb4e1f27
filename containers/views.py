"""Container pages. Views stay thin: access via dashboard.access, work via services."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard import services as dashboard_services
from dashboard.audit import Actor
from dashboard.models import Host, Team

from . import services
from .forms import AssignTeamForm, BulkActionForm, CreateContainerForm
from .models import Container

PAGE_SIZE = 100  # an operator narrows with the filters; 100 rows render in ~50 ms
STATES = ["running", "paused", "restarting", "created", "exited", "dead"]


def _visible_hosts(user):
    return list(access.restrict(user, Host.objects.all(), "view"))


def query_id(request, name):
    """A positive database id from the query string, or None (junk is ignored, never a 500)."""
    value = request.GET.get(name) or ""
    if value.isascii() and value.isdigit() and 0 < len(value) <= 18:
        return int(value)
    return None


def container_list(request):
    hosts = _visible_hosts(request.user)
    # Live engine state first, so the mirror (and the access filter on it) is current.
    host_errors = services.refresh_hosts(hosts)
    qs = access.restrict(request.user, Container.objects.present(), "view").select_related(
        "host", "team", "owner"
    )
    host_id = query_id(request, "host")
    state = request.GET.get("state") or ""
    if state not in STATES:
        state = ""
    q = (request.GET.get("q") or "").strip()[:200]
    if host_id is not None:
        qs = qs.filter(host_id=host_id)
    if state:
        qs = qs.filter(state=state)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(image__icontains=q) | Q(docker_id__startswith=q))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(c, access.allowed_actions(request.user, c)) for c in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "rows": rows,
        "page": page,
        "query": query.urlencode(),
        "hosts": hosts,
        "host_errors": {h: host_errors[h.pk] for h in hosts if h.pk in host_errors},
        "states": STATES,
        "filters": {"host": str(host_id or ""), "state": state, "q": q},
        "can_create": access.creatable_teams(request.user).exists(),
        "bulk_actions": services.ACTIONS,
    }
    template = "containers/list.html"
    if request.htmx and request.htmx.target == "container-table":
        template = "containers/container_table.html"
    return render(request, template, context)


def container_detail(request, pk):
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team", "owner"), pk=pk
    )
    summary, error = None, ""
    actions = access.allowed_actions(request.user, container)
    if container.removed_at is None:
        try:
            summary = services.inspect_container(container, env_values="reveal_env" in actions)
        except services.EngineError as exc:
            error = exc.message
    container.refresh_from_db()
    return render(
        request,
        "containers/detail.html",
        {
            "container": container,
            "summary": summary,
            "engine_error": error,
            "actions": actions,
            "assign_form": AssignTeamForm(initial={"team": container.team}),
            # The last few jobs, so what just happened to the container stays in sight.
            "jobs": access.restrict(request.user, container.job_set.all(), "view")[:3],
        },
    )


@require_POST
def container_reveal_env(request, pk):
    """One environment value in clear, for operators; the reveal is audited."""
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team"), "reveal_env", pk=pk
    )
    key = request.POST.get("key") or ""
    if not key or len(key) > 256:
        return HttpResponseBadRequest("Name the variable to reveal.")
    try:
        value = services.reveal_env(Actor.from_request(request), container, key)
    except services.EngineError as exc:
        return render(request, "containers/env_value.html", {"error": exc.message}, status=502)
    if value is None:
        raise Http404("No such variable")
    return render(request, "containers/env_value.html", {"value": value})


def container_new(request):
    if access.is_admin(request.user) and not Team.objects.exists():
        # A first run: every container belongs to a team, and there is none yet.
        if request.method == "POST" and request.POST.get("first_team"):
            name = (request.POST.get("first_team") or "").strip()[:64] or "default"
            team = dashboard_services.save_team(Actor.from_request(request), Team(name=name))
            messages.success(
                request, f"Team {team.name} created: containers you make belong to it."
            )
            return redirect("containers:new")
        return render(request, "containers/first_team.html")
    if not access.creatable_teams(request.user).exists():
        if request.method == "POST":  # a write refused to a reader: 403
            raise PermissionDenied("You need the operator role in a team to create containers.")
        messages.error(request, "You need the operator role in a team to create containers.")
        return redirect("containers:list")
    form = CreateContainerForm(request.user, request.POST or None)
    job = None
    if request.method == "POST" and form.is_valid():
        job = services.request_create(
            Actor.from_request(request),
            form.cleaned_data["host"],
            form.cleaned_data["team"],
            form.spec,
        )
        if not request.htmx:
            messages.info(request, f"Creating {job.target}: follow the job below.")
            return redirect("job", pk=job.pk)
        # A fresh form for the next container, on the same host and team.
        form = CreateContainerForm(
            request.user,
            initial={"host": form.cleaned_data["host"], "team": form.cleaned_data["team"]},
        )
    template = "containers/create_form.html" if request.htmx else "containers/new.html"
    return render(
        request,
        template,
        {"form": form, "job": job},
        status=422 if request.method == "POST" and job is None else 200,
    )


@require_POST
def container_action(request, pk, action):
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team"), action, pk=pk
    )
    job = services.request_action(
        Actor.from_request(request),
        container,
        action,
        force=request.POST.get("force") == "on",
        volumes=request.POST.get("volumes") == "on",
    )
    if request.htmx:
        return render(request, "dashboard/job_row.html", {"job": job, "follow": _follow(request)})
    messages.info(request, f"{action.capitalize()} {container.name}: queued.")
    if action == "remove":
        return redirect("containers:list")
    return redirect("containers:detail", pk=container.pk)


def _follow(request):
    """What the page that asked shows of a container, so the job socket can update it."""
    path = urlsplit(request.htmx.current_url_abs_path or "").path
    return "row" if path == reverse("containers:list") else "head"


@require_POST
def container_bulk(request):
    form = BulkActionForm(request.user, request.POST)
    if not form.is_valid():
        return render(
            request, "containers/bulk_result.html", {"form": form, "jobs": []}, status=422
        )
    action = form.cleaned_data["action"]
    actor = Actor.from_request(request)
    jobs, refused = [], []
    for container in form.cleaned_data["ids"]:
        # The service checks the permission; a refusal here is one row's answer.
        try:
            job = services.request_action(
                actor,
                container,
                action,
                force=form.cleaned_data["force"],
                volumes=form.cleaned_data["volumes"],
            )
        except (PermissionDenied, Http404):
            refused.append(container)
            continue
        jobs.append(job)
    status = 403 if refused and not jobs else 200
    return render(
        request,
        "containers/bulk_result.html",
        {"jobs": jobs, "refused": refused, "action": action},
        status=status,
    )


@require_POST
def container_assign(request, pk):
    container = access.get_or_404(request.user, Container.objects.all(), "assign", pk=pk)
    form = AssignTeamForm(request.POST)
    if form.is_valid():
        services.assign_team(Actor.from_request(request), container, form.cleaned_data["team"])
        messages.success(
            request, f"{container.name} now belongs to {form.cleaned_data['team'] or 'no team'}."
        )
    else:
        messages.error(request, "Choose a team.")
    return redirect("containers:detail", pk=container.pk)
