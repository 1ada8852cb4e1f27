"""Volumes and networks pages: one list per kind, per host, with the same gate as containers."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from containers.forms import AssignTeamForm
from containers.policy import PolicyError
from containers.views import query_id
from dashboard import access
from dashboard import services as dashboard_services
from dashboard.audit import Actor
from dashboard.engine import EngineError

from . import services
from .forms import CreateForm, NetworkCreateForm
from .models import Network, Volume

KINDS = {
    "volume": (Volume, services.sync_volumes, CreateForm),
    "network": (Network, services.sync_networks, NetworkCreateForm),
}


def volume_list(request):
    return _list(request, "volume")


def network_list(request):
    return _list(request, "network")


def _list(request, kind):
    model, sync, form_class = KINDS[kind]
    hosts = services.visible_hosts(request.user)
    host_id = query_id(request, "host")
    shown = [h for h in hosts if host_id is None or h.pk == host_id]
    errors = services.refresh(shown, sync)
    rows = (
        access.restrict(request.user, model.objects.present(), "view")
        .filter(host__in=shown)
        .select_related("host", "team", "owner")
    )
    usage = {}
    if kind == "volume":
        for host in shown:
            if host.pk not in errors:
                try:
                    usage[host.pk] = services.volume_usage(host)
                except EngineError as exc:
                    errors[host.pk] = exc.message
    listed = []
    for obj in rows:
        used_by = usage.get(obj.host_id, {}).get(obj.name, []) if kind == "volume" else []
        listed.append((obj, access.allowed_actions(request.user, obj), used_by))
    can_create = access.creatable_teams(request.user).exists()
    return render(
        request,
        f"resources/{kind}_list.html",
        {
            "rows": listed,
            "hosts": hosts,
            "host_filter": host_id,
            "host_errors": {h: errors[h.pk] for h in shown if h.pk in errors},
            "form": form_class(request.user) if can_create else None,
            "assign_form": AssignTeamForm() if access.is_admin(request.user) else None,
            "kind": kind,
        },
    )


@require_POST
def create(request, kind):
    model, _sync, form_class = KINDS[kind]
    form = form_class(request.user, request.POST)
    if not access.creatable_teams(request.user).exists():
        raise PermissionDenied(f"You need the operator role in a team to create a {kind}.")
    if form.is_valid():
        data = form.cleaned_data
        options = {"internal": data["internal"]} if kind == "network" else {}
        try:
            job = services.request_create(
                Actor.from_request(request), kind, data["host"], data["team"], data["name"], options
            )
        except PolicyError as exc:
            messages.error(request, exc.message)
        else:
            messages.info(request, f"Creating {kind} {job.target}: follow the job below.")
            return redirect("job", pk=job.pk)
    else:
        for field, errs in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errs)}")
    return redirect(f"resources:{kind}_list")


@require_POST
def remove(request, kind, pk):
    model = KINDS[kind][0]
    obj = access.get_or_404(request.user, model.objects.select_related("host"), "remove", pk=pk)
    job = services.request_remove(Actor.from_request(request), obj)
    messages.info(request, f"Removing {kind} {obj.name}: follow the job below.")
    return redirect("job", pk=job.pk)


@require_POST
def assign(request, kind, pk):
    model = KINDS[kind][0]
    obj = access.get_or_404(request.user, model.objects.all(), "assign", pk=pk)
    form = AssignTeamForm(request.POST)
    if form.is_valid():
        dashboard_services.assign_team(Actor.from_request(request), obj, form.cleaned_data["team"])
        messages.success(
            request, f"{kind.capitalize()} {obj.name} now belongs to {obj.team or 'no team'}."
        )
    else:
        messages.error(request, "Choose a team.")
    return redirect(f"resources:{kind}_list")
