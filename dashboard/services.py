"""Dashboard services: hosts, teams, memberships and users. Each writes its audit entry."""

from django.contrib.auth import get_user_model
from django.db import transaction

from . import access
from .audit import record
from .engine import EngineError, forget_client, probe
from .models import Membership


def _require_admin(actor):
    """Admins only; Actor(None) is the server's shell (management commands)."""
    if actor is None or actor.user is None:
        return
    if not access.is_admin(actor.user):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only admins can do this")


def save_host(actor, host, tls_client_key=None, teams=None):
    """Create or update a host (and, given `teams`, the teams it is granted to), then probe it."""
    _require_admin(actor)
    creating = host.pk is None
    if tls_client_key is not None:
        host.tls_client_key = tls_client_key
    with transaction.atomic():
        host.save()
        if teams is not None:
            host.teams.set(teams)
    forget_client(host)
    record(
        actor,
        "host.create" if creating else "host.update",
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
    check_host(host)
    return host


def remove_host(actor, host):
    _require_admin(actor)
    record(actor, "host.remove", host=host, target=host, params={"url": host.url})
    forget_client(host)
    host.delete()


def check_host(host):
    """Probe a host; returns (ok, message). Never raises for engine trouble."""
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
    _require_admin(actor)
    creating = team.pk is None
    team.save()
    record(
        actor,
        "team.create" if creating else "team.update",
        team=team,
        target=team,
        params={"name": team.name},
    )
    return team


def remove_team(actor, team):
    _require_admin(actor)
    record(actor, "team.remove", target=team, params={"name": team.name})
    team.delete()


def set_membership(actor, team, user, role):
    """Add a user to a team or change their role."""
    _require_admin(actor)
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
    return membership


def remove_membership(actor, membership):
    _require_admin(actor)
    record(
        actor,
        "team.member_remove",
        team=membership.team,
        target=membership.user.get_username(),
        target_type="user",
        params={"team": membership.team.name, "role": membership.role},
    )
    membership.delete()


def create_user(actor, username, password, email="", superuser=False):
    _require_admin(actor)
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username=username, email=email, password=password)
    else:
        user = User.objects.create_user(username=username, email=email, password=password)
    record(
        actor, "user.create", target=username, target_type="user", params={"superuser": superuser}
    )
    return user
