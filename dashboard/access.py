"""The one permission gate: every view, websocket, task and command calls it.

`restrict(user, queryset, action)` narrows a queryset to what the user may do;
`require(user, obj, action)` raises Http404 when the user may not even see the
object and PermissionDenied when they may see it but not do `action`.
Default deny: an action not in the tables below is refused to everyone but admins,
and an action not in ADMIN_ONLY or the tables raises, so a typo cannot open a door.

Roles (per team membership): viewer reads, operator acts on the team's
containers, admin (in any team) administers the whole dashboard: hosts, users,
teams, unowned containers and privileged create options. Superusers are admins.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from .models import AuditEntry, Host, Job, Membership, Role, Team

# Minimum team role for each action on a team's container.
CONTAINER_ACTIONS = {
    "view": Role.VIEWER,
    "logs": Role.VIEWER,
    "stats": Role.VIEWER,
    "start": Role.OPERATOR,
    "stop": Role.OPERATOR,
    "restart": Role.OPERATOR,
    "kill": Role.OPERATOR,
    "pause": Role.OPERATOR,
    "unpause": Role.OPERATOR,
    "remove": Role.OPERATOR,
    "exec": Role.OPERATOR,
    "assign": Role.ADMIN,
}
# Minimum team role for actions on a team itself.
TEAM_ACTIONS = {
    "view": Role.VIEWER,
    "create_container": Role.OPERATOR,
    "privileged": Role.ADMIN,
    "manage": Role.ADMIN,
}
HOST_ACTIONS = {"view", "create_container", "manage"}

_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def roles_at_least(role):
    return [r for r, rank in _RANK.items() if rank >= _RANK[role]]


def is_admin(user):
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_dockyard_is_admin", None)
    if cached is None:
        cached = Membership.objects.filter(user=user, role=Role.ADMIN).exists()
        user._dockyard_is_admin = cached
    return cached


def _min_role(table, action):
    try:
        return table[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def _member_of(user, roles, team_field="team"):
    return Exists(Membership.objects.filter(user=user, role__in=roles, team=OuterRef(team_field)))


def restrict(user, queryset, action="view"):
    """The part of `queryset` on which `user` may do `action`."""
    model = queryset.model
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    admin = is_admin(user)
    label = model._meta.label
    if label == "containers.Container":
        role = _min_role(CONTAINER_ACTIONS, action)
        if admin:
            return queryset
        return queryset.filter(_member_of(user, roles_at_least(role)))
    if model is Team:
        role = _min_role(TEAM_ACTIONS, action)
        if admin:
            return queryset
        return queryset.filter(_member_of(user, roles_at_least(role), team_field="pk"))
    if model is Host:
        if action not in HOST_ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if admin:
            return queryset
        if action == "manage":
            return queryset.none()
        # Hosts are shared infrastructure: any team member may see them and
        # create containers there (for a team where they are operator).
        if action == "create_container":
            has = Membership.objects.filter(user=user, role__in=roles_at_least(Role.OPERATOR))
        else:
            has = Membership.objects.filter(user=user)
        return queryset if has.exists() else queryset.none()
    if model is AuditEntry:
        if action != "view":
            raise ValueError("audit entries can only be viewed")
        if admin:
            return queryset
        return queryset.filter(
            Q(team__isnull=False) & _member_of(user, roles_at_least(Role.VIEWER))
        )
    if model is Job:
        if action != "view":
            raise ValueError("jobs can only be viewed")
        if admin:
            return queryset
        return queryset.filter(user=user)
    raise ValueError(f"no access rules for {label}")


def can(user, obj, action):
    try:
        require(user, obj, action)
    except (Http404, PermissionDenied):
        return False
    return True


def require(user, obj, action):
    """Raise Http404 if `user` cannot see `obj`, PermissionDenied if they cannot `action` it."""
    model = obj.__class__
    if not restrict(user, model.objects.filter(pk=obj.pk), "view").exists():
        raise Http404(f"No {model._meta.verbose_name} found")
    if action == "view":
        return obj
    if not restrict(user, model.objects.filter(pk=obj.pk), action).exists():
        raise PermissionDenied(
            f"You may not {action.replace('_', ' ')} this {model.__name__.lower()}"
        )
    return obj


def get_or_404(user, queryset, action="view", **lookup):
    """Fetch one object the user can see, then check `action` (404 / 403 as above)."""
    try:
        obj = restrict(user, queryset, "view").get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(f"No {queryset.model._meta.verbose_name} found") from None
    return require(user, obj, action)


def roles_by_team(user):
    """{team_id: role} for the user, cached on the user object for one request."""
    cached = getattr(user, "_dockyard_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._dockyard_roles = cached
    return cached


def allowed_actions(user, container):
    """Container actions the user may perform, for rendering buttons (no query per row)."""
    if is_admin(user):
        return set(CONTAINER_ACTIONS)
    role = roles_by_team(user).get(container.team_id)
    if role is None:
        return set()
    return {a for a, need in CONTAINER_ACTIONS.items() if _RANK[role] >= _RANK[need]}


def forget(user):
    """Drop the per-object role caches (long-lived websockets re-check fresh)."""
    for attr in ("_dockyard_is_admin", "_dockyard_roles"):
        user.__dict__.pop(attr, None)


def creatable_teams(user):
    return restrict(user, Team.objects.all(), "create_container")
