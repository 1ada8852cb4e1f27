"""Dashboard services: hosts, teams, memberships and users. Each writes its audit entry.

Global things (hosts, users, teams, the dashboard-admin flag) are for dashboard
admins; a team's own members and settings are also for that team's admins. Every
function checks through `access` and refuses (with a DENIED audit entry) an actor
that is neither a user allowed to act nor the server's own shell.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction

from . import access, live
from .audit import record
from .engine import EngineError, forget_client, probe
from .models import AuditEntry, Membership, Profile


def _deny(actor, action, message, **where):
    record(actor, action, result=AuditEntry.Result.DENIED, message=message, **where)
    raise PermissionDenied(message)


def _require_admin(actor, action, **where):
    """Dashboard admins, or the server's shell; anyone else (a deleted user too) is refused."""
    if actor is not None and actor.is_system:
        return
    if actor is None or not access.is_admin(actor.user):
        _deny(actor, action, "Only dashboard admins can do this.", **where)


def _require_team(actor, team, action_name, need="manage"):
    """A team admin of `team` (or a dashboard admin, or the shell)."""
    if actor is not None and actor.is_system:
        return
    if actor is None or actor.user is None or not access.can(actor.user, team, need):
        _deny(actor, action_name, "Only this team's admins can do this.", team=team)


def save_host(actor, host, tls_client_key=None, teams=None):
    """Create or update a host (and, given `teams`, the teams it is granted to), then probe it."""
    creating = host.pk is None
    action = "host.create" if creating else "host.update"
    _require_admin(actor, action, target=host.name, target_type="host")
    if tls_client_key is not None:
        host.tls_client_key = tls_client_key
    with transaction.atomic():
        host.save()
        if teams is not None:
            host.teams.set(teams)
    forget_client(host)
    record(
        actor,
        action,
        host=host,
        target=host,
        params={
            "url": host.url,
            "tls": host.uses_tls,
            "insecure": host.insecure,
            "all_teams": host.all_teams,
            "teams": sorted(t.name for t in host.teams.all()),
        },
    )
    live.access_changed()  # who sees the host may have changed
    check_host(host)
    return host


def remove_host(actor, host):
    _require_admin(actor, "host.remove", target=host.name, target_type="host")
    record(actor, "host.remove", host=host, target=host, params={"url": host.url})
    forget_client(host)
    host.delete()
    live.access_changed()


def check_host(host):
    """Probe a host; returns (ok, message). Never raises for engine trouble.

    The message has engine-wide counts: only for the pages of dashboard admins.
    """
    try:
        info = probe(host)
    except EngineError as exc:
        return False, exc.message
    running = info.get("ContainersRunning", 0)
    return True, (
        f"Docker {host.engine_version} (API {host.api_version}), "
        f"{info.get('Containers', 0)} containers, {running} running, "
        f"{info.get('Images', 0)} images"
    )


def save_team(actor, team):
    creating = team.pk is None
    action = "team.create" if creating else "team.update"
    if creating:
        _require_admin(actor, action, target=team.name, target_type="team")
    else:
        _require_team(actor, team, action)
    team.save()
    record(actor, action, team=team, target=team, params={"name": team.name})
    return team


def remove_team(actor, team):
    _require_admin(actor, "team.remove", target=team.name, target_type="team")
    record(actor, "team.remove", target=team, params={"name": team.name})
    user_ids = list(team.memberships.values_list("user_id", flat=True))
    team.delete()
    live.access_changed(user_ids)


def set_membership(actor, team, user, role):
    """Add a user to a team or change their role (team admins and dashboard admins)."""
    _require_team(actor, team, "team.member_set")
    with transaction.atomic():
        membership, created = Membership.objects.update_or_create(
            team=team, user=user, defaults={"role": role}
        )
    record(
        actor,
        "team.member_add" if created else "team.member_role",
        team=team,
        target=user.get_username(),
        target_type="user",
        params={"team": team.name, "role": role},
    )
    live.access_changed([user.pk])
    return membership


def remove_membership(actor, membership):
    _require_team(actor, membership.team, "team.member_remove")
    record(
        actor,
        "team.member_remove",
        team=membership.team,
        target=membership.user.get_username(),
        target_type="user",
        params={"team": membership.team.name, "role": membership.role},
    )
    user_id = membership.user_id
    membership.delete()
    live.access_changed([user_id])


def create_user(actor, username, password, email="", superuser=False, dashboard_admin=False):
    _require_admin(actor, "user.create", target=username, target_type="user")
    User = get_user_model()
    with transaction.atomic():
        if superuser:
            user = User.objects.create_superuser(username=username, email=email, password=password)
        else:
            user = User.objects.create_user(username=username, email=email, password=password)
        if dashboard_admin:
            Profile.objects.create(user=user, dashboard_admin=True)
    record(
        actor,
        "user.create",
        target=username,
        target_type="user",
        params={"superuser": superuser, "dashboard_admin": dashboard_admin},
    )
    return user


def set_dashboard_admin(actor, user, flag):
    """Grant or take away the dashboard-admin flag (superusers keep their power regardless)."""
    _require_admin(actor, "user.dashboard_admin", target=user.get_username(), target_type="user")
    if actor.user is not None and actor.user.pk == user.pk and not flag:
        _deny(
            actor,
            "user.dashboard_admin",
            "You cannot take away your own admin flag; ask another admin.",
            target=user.get_username(),
            target_type="user",
        )
    Profile.objects.update_or_create(user=user, defaults={"dashboard_admin": bool(flag)})
    record(
        actor,
        "user.dashboard_admin",
        target=user.get_username(),
        target_type="user",
        params={"dashboard_admin": bool(flag)},
    )
    live.access_changed([user.pk])


def set_user_active(actor, user, active):
    """Deactivate (or reactivate) an account; its open sockets are closed at once."""
    _require_admin(actor, "user.active", target=user.get_username(), target_type="user")
    acting = actor.user if actor is not None else None
    # What the users table offers, enforced: no one deactivates themselves, and only a
    # superuser (or the shell) changes a superuser's account.
    if acting is not None and acting.pk == user.pk and not active:
        _deny(
            actor,
            "user.active",
            "You cannot deactivate your own account.",
            target=user.get_username(),
            target_type="user",
        )
    if user.is_superuser and acting is not None and not acting.is_superuser:
        _deny(
            actor,
            "user.active",
            "Only a superuser can change a superuser's account.",
            target=user.get_username(),
            target_type="user",
        )
    user.is_active = bool(active)
    user.save(update_fields=["is_active"])
    record(
        actor,
        "user.activate" if active else "user.deactivate",
        target=user.get_username(),
        target_type="user",
    )
    live.access_changed([user.pk])


def assign_team(actor, obj, team):
    """Give a container, volume or network to a team (or to nobody). Dashboard admins only.

    Typically for what was found on an engine; the gate's "assign" action decides.
    """
    access.require(actor.user, obj, "assign")
    old = obj.team.name if obj.team else None
    obj.team = team
    obj.save(update_fields=["team", "last_seen"])
    record(
        actor,
        f"{obj._meta.model_name}.assign",
        target=obj,
        team=team,
        params={"from_team": old, "to_team": team.name if team else None},
    )
    return obj
