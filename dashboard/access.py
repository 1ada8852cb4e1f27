"""The one permission gate: every view, websocket, task and command calls it.

`restrict(user, queryset, action)` narrows a queryset to what the user may do;
`require(user, obj, action)` raises Http404 when the user may not even see the
object and PermissionDenied when they may see it but not do `action`.
Default deny: an action listed with `None` is for dashboard admins only, and an
action not listed at all raises, so a typo cannot open a door.

Two kinds of power, never mixed:
- a *dashboard admin* (superuser, or Profile.dashboard_admin) owns global things:
  hosts, users, teams, unowned resources, privileged create options;
- a *team role* (viewer < operator < admin) applies to what that team owns, on the
  hosts a dashboard admin granted to that team, and to nothing else.

Roles are read from the database on every check of a new request; long-lived
connections (websockets) re-read them with `fresh_user` before each re-check.

API tokens narrow their user, here and nowhere else: `narrow(user, token)` marks the
request's (or job's) user, and every function below honours the mark. A read-only
token may only do what a viewer may (every write is refused, dashboard-admin power
included); a token restricted to a team sees and acts only on that team's things
(its hosts, containers, volumes, networks, audit entries, the jobs queued through
tokens of that team) and never holds dashboard-admin-only power, even when its user
sees more. A narrowed dashboard admin is an admin of that team's things only.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from .models import AuditEntry, Host, Job, Membership, Profile, Role, Team

VIEWER, OPERATOR, ADMIN = Role.VIEWER, Role.OPERATOR, Role.ADMIN

# Minimum team role for each action on something a team owns; None = dashboard admins.
CONTAINER_ACTIONS = {
    "view": VIEWER,
    "logs": VIEWER,
    "stats": VIEWER,
    "start": OPERATOR,
    "stop": OPERATOR,
    "restart": OPERATOR,
    "kill": OPERATOR,
    "pause": OPERATOR,
    "unpause": OPERATOR,
    "remove": OPERATOR,
    "exec": OPERATOR,
    "reveal_env": OPERATOR,
    "assign": None,
}
# Volumes and networks: mount or attach ("use"), remove, hand to another team.
RESOURCE_ACTIONS = {"view": VIEWER, "use": OPERATOR, "remove": OPERATOR, "assign": None}
TEAM_ACTIONS = {
    "view": VIEWER,
    "create_container": OPERATOR,
    "create_image": OPERATOR,  # pull, build or load an image for the team
    "manage": ADMIN,  # members and settings of this one team
    "privileged": None,
    "delete": None,
}
HOST_ACTIONS = {
    "view": VIEWER,
    "create_container": OPERATOR,
    "create_image": OPERATOR,
    "manage": None,
}
# Registries are global, granted to teams like hosts: a role in a granted team counts.
# Deleting a tag is for a granted team's admin: the registry may be shared by teams.
REGISTRY_ACTIONS = {
    "view": VIEWER,  # details, browse repositories and tags
    "use": OPERATOR,  # pull and push with the stored credentials, test login
    "delete_tag": ADMIN,
    "manage": None,  # create, edit, grant, delete
}
GRANTED_MODELS = {"registries.Registry": REGISTRY_ACTIONS}
# Owned things a dashboard admin can mark `shared`: these actions are then open to
# every team of the object's host (a shared base image is seen and built on by all).
SHARED_ACTIONS = {"images.Image": {"view"}}
# Images: exporting hands out the content, so it is an operator's; forcing a removal
# (under running containers) and sharing a base image with every team are global.
IMAGE_ACTIONS = {
    "view": VIEWER,
    "export": OPERATOR,
    "tag": OPERATOR,
    "push": OPERATOR,
    "copy": OPERATOR,
    "remove": OPERATOR,
    "force_remove": None,
    "assign": None,
    "share": None,
}
# Compose stacks: viewers read (page, logs), operators deploy and act.
STACK_ACTIONS = {
    "view": VIEWER,
    "logs": VIEWER,
    "deploy": OPERATOR,
    "edit": OPERATOR,
    "pull": OPERATOR,
    "rollback": OPERATOR,
    "start": OPERATOR,
    "stop": OPERATOR,
    "restart": OPERATOR,
    "scale": OPERATOR,
    "down": OPERATOR,
    "webhook": OPERATOR,  # see the secret, rotate it
    "reveal_env": OPERATOR,
    "delete": OPERATOR,
    "assign": None,
}
OWNED_MODELS = {
    "containers.Container": CONTAINER_ACTIONS,
    "stacks.Stack": STACK_ACTIONS,
    "resources.Volume": RESOURCE_ACTIONS,
    "resources.Network": RESOURCE_ACTIONS,
    "images.Image": IMAGE_ACTIONS,
}
# Owned by a team but on no one host (alert rules, silences): the team role decides
# alone; team NULL (rules over every team) means dashboard admins only.
ALERT_ACTIONS = {"view": VIEWER, "change": OPERATOR, "delete": OPERATOR}
TEAM_OWNED_MODELS = {
    "alerts.AlertRule": ALERT_ACTIONS,
    "alerts.Silence": ALERT_ACTIONS,
}

_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def roles_at_least(role):
    return [r for r, rank in _RANK.items() if rank >= _RANK[role]]


def _active(user):
    return bool(user) and user.is_authenticated and user.is_active


def narrow(user, token):
    """Mark `user` as acting through API token `token` (anything with `read_only` and
    `team_id`); the gate then applies the token's limits. Returns the user."""
    user._dockyard_token = token
    return user


def token_of(user):
    """The API token `user` acts through, or None (a session, a job queued from a page)."""
    return getattr(user, "_dockyard_token", None)


def _token_allows(token, role):
    """May a request through `token` do an action whose minimum role is `role`?"""
    if token is None:
        return True
    if role is None:  # dashboard-admin-only: global power, never through a narrowed token
        return not (token.read_only or token.team_id)
    return not token.read_only or role == VIEWER


def is_admin(user):
    """Is `user` a dashboard admin with full power? (A team's admin role does not count;
    neither does an admin acting through a read-only or team-restricted token.)"""
    token = token_of(user)
    if token is not None and (token.read_only or token.team_id):
        return False
    return _admin_sight(user)


def _admin_sight(user):
    """Is `user` a dashboard admin (what they may see, before any token's narrowing)?"""
    if not _active(user):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_dockyard_is_admin", None)
    if cached is None:
        cached = Profile.objects.filter(user=user, dashboard_admin=True).exists()
        user._dockyard_is_admin = cached
    return cached


def _min_role(table, action):
    try:
        return table[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def _member_of(user, roles, team_field="team"):
    return Exists(Membership.objects.filter(user=user, role__in=roles, team=OuterRef(team_field)))


def _host_open_to_team(host_field="host", team_field="team"):
    """The object's host is granted to the object's team (or open to all teams)."""
    grants = Host.teams.through.objects.filter(host=OuterRef(host_field), team=OuterRef(team_field))
    return Q(**{f"{host_field}__all_teams": True}) | Exists(grants)


def _hosts_for(user, roles):
    """Hosts open to a team in which the user holds one of `roles`."""
    granted = Host.teams.through.objects.filter(
        host=OuterRef("pk"), team__memberships__user=user, team__memberships__role__in=roles
    )
    any_role = Membership.objects.filter(user=user, role__in=roles)
    return (Q(all_teams=True) & Exists(any_role)) | Exists(granted)


def _granted_to(user, roles, model):
    """Objects with `all_teams` / `teams` grants open to a team where the user holds `roles`."""
    through = model.teams.through
    own_fk = model.teams.field.m2m_field_name()
    granted = through.objects.filter(
        **{own_fk: OuterRef("pk")},
        team__memberships__user=user,
        team__memberships__role__in=roles,
    )
    any_role = Membership.objects.filter(user=user, role__in=roles)
    return (Q(all_teams=True) & Exists(any_role)) | Exists(granted)


def restrict(user, queryset, action="view"):
    """The part of `queryset` on which `user` may do `action`."""
    model = queryset.model
    label = model._meta.label
    if label in OWNED_MODELS:
        role = _min_role(OWNED_MODELS[label], action)
    elif label in TEAM_OWNED_MODELS:
        role = _min_role(TEAM_OWNED_MODELS[label], action)
    elif model is Team:
        role = _min_role(TEAM_ACTIONS, action)
    elif model is Host:
        role = _min_role(HOST_ACTIONS, action)
    elif label in GRANTED_MODELS:
        role = _min_role(GRANTED_MODELS[label], action)
    elif model in (AuditEntry, Job):
        if action != "view":
            raise ValueError(f"{model._meta.verbose_name_plural} can only be viewed")
        role = VIEWER
    else:
        raise ValueError(f"no access rules for {label}")
    if not _active(user):
        return queryset.none()
    token = token_of(user)
    if not _token_allows(token, role):
        return queryset.none()
    if _admin_sight(user):
        allowed = queryset
    elif role is None:
        return queryset.none()
    else:
        allowed = _by_role(user, queryset, label, roles_at_least(role), action)
    if token is not None and token.team_id:
        allowed = _narrow_to_team(allowed, label, token.team_id, action)
    return allowed


def _by_role(user, queryset, label, roles, action):
    model = queryset.model
    if label in OWNED_MODELS:
        # Unowned things (team NULL) match no membership: dashboard admins only.
        owned = _member_of(user, roles) & _host_open_to_team()
        if action in SHARED_ACTIONS.get(label, ()):
            # A shared base image: seen by every team of the host, acted on by its own.
            visible_hosts = Host.objects.filter(_hosts_for(user, roles)).values("pk")
            owned |= Q(shared=True, host__in=visible_hosts)
        return queryset.filter(owned)
    if label in TEAM_OWNED_MODELS:
        return queryset.filter(_member_of(user, roles))
    if model is Team:
        return queryset.filter(_member_of(user, roles, team_field="pk"))
    if model is Host:
        return queryset.filter(_hosts_for(user, roles))
    if label in GRANTED_MODELS:
        return queryset.filter(_granted_to(user, roles, model))
    if model is AuditEntry:
        return queryset.filter(Q(team__isnull=False) & _member_of(user, roles))
    return queryset.filter(user=user)  # Job: one's own


def _narrow_to_team(queryset, label, team_id, action="view"):
    """What a token restricted to team `team_id` may reach of what its user may."""
    model = queryset.model
    if label in OWNED_MODELS:
        own = Q(team_id=team_id) & _host_open_to_team()
        if action in SHARED_ACTIONS.get(label, ()):
            grants = Host.teams.through.objects.filter(host=OuterRef("host_id"), team_id=team_id)
            own |= Q(shared=True) & (Q(host__all_teams=True) | Exists(grants))
        return queryset.filter(own)
    if label in TEAM_OWNED_MODELS:
        return queryset.filter(team_id=team_id)
    if model is Team:
        return queryset.filter(pk=team_id)
    if model is Host:
        grants = Host.teams.through.objects.filter(host=OuterRef("pk"), team_id=team_id)
        return queryset.filter(Q(all_teams=True) | Exists(grants))
    if label in GRANTED_MODELS:
        own_fk = model.teams.field.m2m_field_name()
        grants = model.teams.through.objects.filter(**{own_fk: OuterRef("pk")}, team_id=team_id)
        return queryset.filter(Q(all_teams=True) | Exists(grants))
    if model is AuditEntry:
        return queryset.filter(team_id=team_id)
    # Job: only jobs queued through tokens restricted to the same team (a job's target
    # names another team's thing when queued from a page or a wider token).
    return queryset.filter(api_token__team_id=team_id)


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
            refusal(user, f"You may not {action.replace('_', ' ')} this {model._meta.verbose_name}")
        )
    return obj


READ_ONLY_TOKEN = "This API token is read-only; use a token with write access"


def refusal(user, message):
    """The reason to give for a refused write: the token's, when a read-only token is why."""
    token = token_of(user)
    return READ_ONLY_TOKEN if token is not None and token.read_only else message


def require_host_for_team(user, host, team, action="create_container"):
    """`user` may `action` on `host` and `team`, and the host is granted to that team."""
    require(user, host, action)
    require(user, team, action)
    if not (host.all_teams or host.teams.filter(pk=team.pk).exists()) and not is_admin(user):
        raise PermissionDenied(f"Host {host.name} is not granted to team {team.name}")


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


def allowed_actions(user, obj):
    """Actions the user may do on a listed object, for rendering buttons (no query per row).

    Only for objects that came out of `restrict(user, …, "view")`: it does not
    re-check host grants.
    """
    table = OWNED_MODELS.get(obj._meta.label) or TEAM_OWNED_MODELS[obj._meta.label]
    token = token_of(user)
    if token is not None and token.team_id and obj.team_id != token.team_id:
        return set()
    if _admin_sight(user):
        actions = set(table)
    else:
        role = roles_by_team(user).get(obj.team_id)
        if role is None:
            return set()
        actions = {
            a for a, need in table.items() if need is not None and _RANK[role] >= _RANK[need]
        }
    return {a for a in actions if _token_allows(token, table[a])}


def fresh_user(user_or_pk):
    """The user as the database has them now (no cached roles), or None if gone.

    Long-lived connections call this before each re-check, so a demotion, a removed
    membership or a deactivation takes effect at the next check.
    """
    pk = getattr(user_or_pk, "pk", user_or_pk)
    if pk is None:
        return None
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


def creatable_teams(user):
    return restrict(user, Team.objects.all(), "create_container")
