"""Home, hosts, teams, users, audit log and job pages."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts.models import Alert
from alerts.services import visible_alerts
from containers import services as container_services
from containers.models import Container

from . import access, jobs, services
from .audit import Actor
from .forms import AuditFilterForm, HostForm, MembershipForm, MembershipRoleForm, TeamForm, UserForm
from .models import AuditEntry, Host, Job, Membership, Team


def _admin_only(request):
    if not access.is_admin(request.user):
        raise PermissionDenied("Only admins can do this")


def home(request):
    hosts = list(access.restrict(request.user, Host.objects.all(), "view"))
    # Counts must match the container list, which reads the engines live.
    container_services.refresh_hosts(hosts)
    containers = access.restrict(request.user, Container.objects.present(), "view")
    counts = {
        row["host_id"]: row
        for row in containers.values("host_id").annotate(
            total=Count("pk"), running=Count("pk", filter=Q(state="running"))
        )
    }
    audit = access.restrict(request.user, AuditEntry.objects.all(), "view")[:10]
    firing = visible_alerts(request.user, Alert.objects.firing())
    return render(
        request,
        "dashboard/home.html",
        {
            "hosts": [(h, counts.get(h.pk, {"total": 0, "running": 0})) for h in hosts],
            "audit": audit,
            "firing": firing[:5],
            "firing_count": firing.count(),
            "teams": Membership.objects.filter(user=request.user).select_related("team"),
            "is_admin": access.is_admin(request.user),
        },
    )


# ---------------------------------------------------------------- hosts


def host_list(request):
    hosts = list(
        access.restrict(request.user, Host.objects.all(), "view").prefetch_related("teams")
    )
    # Counts of what this user may see, never the engine's totals.
    visible = access.restrict(request.user, Container.objects.present(), "view")
    counts = dict(visible.values_list("host_id").annotate(n=Count("pk")))
    for host in hosts:
        host.n_containers = counts.get(host.pk, 0)
    return render(request, "hosts/list.html", {"hosts": hosts})


def host_detail(request, pk):
    host = access.get_or_404(request.user, Host.objects.all(), pk=pk)
    containers = access.restrict(request.user, host.containers.present(), "view")
    return render(
        request,
        "hosts/detail.html",
        {
            "host": host,
            "containers": containers.select_related("team")[:200],
            "can_manage": access.can(request.user, host, "manage"),
        },
    )


def host_edit(request, pk=None):
    _admin_only(request)
    host = get_object_or_404(Host, pk=pk) if pk else Host()
    form = HostForm(request.POST or None, instance=host)
    if request.method == "POST" and form.is_valid():
        host = services.save_host(
            Actor.from_request(request),
            form.save(commit=False),
            tls_client_key=form.cleaned_data.get("tls_client_key") or None,
            teams=form.cleaned_data.get("teams"),
        )
        if host.is_reachable:
            messages.success(request, f"Host {host.name} saved and reachable.")
        else:
            messages.warning(
                request, f"Host {host.name} saved, but it is unreachable: {host.last_error}"
            )
        return redirect("host_detail", pk=host.pk)
    return render(request, "hosts/edit.html", {"form": form, "host": host})


@require_POST
def host_test(request, pk):
    host = access.get_or_404(request.user, Host.objects.all(), "manage", pk=pk)
    ok, message = services.check_host(host)
    return render(request, "hosts/test_result.html", {"host": host, "ok": ok, "message": message})


@require_POST
def host_delete(request, pk):
    host = access.get_or_404(request.user, Host.objects.all(), "manage", pk=pk)
    services.remove_host(Actor.from_request(request), host)
    messages.success(
        request, f"Host {host.name} removed from the dashboard (its containers keep running)."
    )
    return redirect("host_list")


# ---------------------------------------------------------------- teams & users


def team_list(request):
    teams = access.restrict(request.user, Team.objects.all(), "view").annotate(
        n_members=Count("memberships", distinct=True),
        n_containers=Count(
            "containers", filter=Q(containers__removed_at__isnull=True), distinct=True
        ),
    )
    form = TeamForm(request.POST or None)
    if request.method == "POST":
        _admin_only(request)
        if form.is_valid():
            team = services.save_team(Actor.from_request(request), form.save(commit=False))
            messages.success(request, f"Team {team.name} created.")
            return redirect("team_detail", pk=team.pk)
    return render(
        request,
        "teams/list.html",
        {
            "teams": teams,
            "form": form,
            "is_admin": access.is_admin(request.user),
            "user_form": UserForm(),
            "users": get_user_model()
            .objects.order_by("username")
            .select_related("dashboard_profile")
            .prefetch_related("memberships__team")
            if access.is_admin(request.user)
            else [],
        },
    )


def team_detail(request, pk):
    team = access.get_or_404(request.user, Team.objects.all(), pk=pk)
    can_manage = access.can(request.user, team, "manage")
    edit_form = TeamForm(instance=team)
    member_form = MembershipForm()
    if request.method == "POST":
        access.require(request.user, team, "manage")
        actor = Actor.from_request(request)
        if "add_member" in request.POST:
            member_form = MembershipForm(request.POST)
            if member_form.is_valid():
                services.set_membership(
                    actor, team, member_form.cleaned_data["user"], member_form.cleaned_data["role"]
                )
                messages.success(request, "Member saved.")
                return redirect("team_detail", pk=team.pk)
        else:
            edit_form = TeamForm(request.POST, instance=team)
            if edit_form.is_valid():
                services.save_team(actor, edit_form.save(commit=False))
                messages.success(request, "Team saved.")
                return redirect("team_detail", pk=team.pk)
    return render(
        request,
        "teams/detail.html",
        {
            "team": team,
            "members": team.memberships.select_related("user"),
            "can_manage": can_manage,
            "can_delete": access.can(request.user, team, "delete"),
            "hosts": access.restrict(request.user, Host.objects.all(), "view").filter(
                Q(all_teams=True) | Q(teams=team)
            ),
            "edit_form": edit_form,
            "member_form": member_form,
            "roles": MembershipRoleForm.base_fields["role"].choices,
        },
    )


@require_POST
def membership_edit(request, pk):
    membership = get_object_or_404(Membership.objects.select_related("team", "user"), pk=pk)
    # Through the team: 404 for those who cannot see it, 403 for its non-admin members.
    access.require(request.user, membership.team, "manage")
    actor = Actor.from_request(request)
    if "remove" in request.POST:
        services.remove_membership(actor, membership)
        messages.success(request, f"{membership.user} removed from {membership.team}.")
    else:
        form = MembershipRoleForm(request.POST, instance=membership)
        if form.is_valid():
            services.set_membership(
                actor, membership.team, membership.user, form.cleaned_data["role"]
            )
            messages.success(request, f"{membership.user} is now {form.cleaned_data['role']}.")
    return redirect("team_detail", pk=membership.team.pk)


@require_POST
def team_delete(request, pk):
    team = access.get_or_404(request.user, Team.objects.all(), "delete", pk=pk)
    services.remove_team(Actor.from_request(request), team)
    messages.success(request, f"Team {team.name} removed; its containers are now unowned.")
    return redirect("team_list")


@require_POST
def user_create(request):
    _admin_only(request)
    form = UserForm(request.POST)
    if form.is_valid():
        services.create_user(
            Actor.from_request(request),
            form.cleaned_data["username"],
            form.cleaned_data["password"],
            form.cleaned_data["email"],
            dashboard_admin=form.cleaned_data["dashboard_admin"],
        )
        messages.success(request, f"User {form.cleaned_data['username']} created.")
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
    return redirect("team_list")


@require_POST
def user_flags(request, pk):
    """Dashboard admins grant or take away the admin flag and (de)activate accounts."""
    _admin_only(request)
    user = get_object_or_404(get_user_model(), pk=pk)
    actor = Actor.from_request(request)
    if "dashboard_admin" in request.POST:
        flag = request.POST["dashboard_admin"] == "1"
        services.set_dashboard_admin(actor, user, flag)
        messages.success(request, f"{user} is {'now' if flag else 'no longer'} a dashboard admin.")
    elif "active" in request.POST:
        active = request.POST["active"] == "1"
        services.set_user_active(actor, user, active)
        messages.success(request, f"{user} is {'active' if active else 'deactivated'}.")
    return redirect("team_list")


# ---------------------------------------------------------------- audit & jobs


def audit_list(request):
    entries = access.restrict(request.user, AuditEntry.objects.all(), "view")
    form = AuditFilterForm(request.GET or None, request.user)
    entries = form.filter(entries)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    template = "audit/audit_table.html" if request.htmx else "audit/list.html"
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, template, {"page": page, "form": form, "query": query.urlencode()})


def job_detail(request, pk):
    job = access.get_or_404(request.user, Job.objects.select_related("container", "host"), pk=pk)
    if request.GET.get("download") == "1":
        response = HttpResponse(job.output, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.txt"'
        return response
    if request.htmx:
        return render(request, "dashboard/job_row.html", {"job": job})
    return render(request, "dashboard/job.html", jobs.output_context(job))
