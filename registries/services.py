"""Registry services: credentials for jobs, who may use which registry, admin changes.

The stored password never leaves the server's memory except towards the registry
itself: `auth_config_for` is called inside worker jobs (pull, push) and by the
registry client; job parameters carry the registry's id, never its credentials.
Admin changes (create, edit, grant, delete) are audited without the secret.
"""

import ipaddress
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from dashboard import access, jobs
from dashboard.audit import record
from dashboard.models import Membership, Team

from .client import RegistryClient, RegistryError
from .manifests import DIGEST_RE, valid_repository, valid_tag
from .models import DOCKER_HUB_HOSTS, Registry


class RegistryInputError(ValueError):
    """Bad registry settings; the message is for the operator."""


# ---------------------------------------------------------------- addresses


def _is_loopback(hostname):
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def normalize_url(value):
    """`registry.example.com[:port]` or `http(s)://…` → `scheme://host[:port]`.

    Without a scheme, https, except on loopback where registries usually speak plain
    HTTP (the engine allows that too). A path, query, user info or a bad port is
    refused: the v2 API always lives at the root of the host.
    """
    text = (value or "").strip()
    if not text:
        raise RegistryInputError("Give the registry's address, e.g. registry.example.com:5000.")
    if any(c.isspace() for c in text) or any(ord(c) < 32 for c in text):
        raise RegistryInputError("A registry address has no spaces or control characters.")
    try:
        if "://" not in text:
            host_part = text.split("/", 1)[0]
            # urlsplit refuses a bracketed host that is not an IPv6 address ("[]").
            hostname = urlsplit(f"//{host_part}").hostname or ""
            scheme = "http" if _is_loopback(hostname) else "https"
            text = f"{scheme}://{text}"
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RegistryInputError(f"Not a registry address: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise RegistryInputError("A registry address starts with https:// or http://.")
    if not parts.hostname:
        raise RegistryInputError("The registry address has no host name.")
    if parts.username or parts.password:
        raise RegistryInputError(
            "Put the user name and password in their own fields, not in the address."
        )
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise RegistryInputError(
            "Give the registry's host (and port) only: its API is always at /v2/."
        )
    hostname = parts.hostname.lower()
    if not _valid_hostname(hostname):
        raise RegistryInputError(f"{parts.hostname!r} is not a valid host name.")
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


def _valid_hostname(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if len(name) > 253:
        return False
    labels = name.split(".")
    return all(
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isalnum() or c == "-" for c in label)
        and label.isascii()
        for label in labels
    )


def reference_host(reference):
    """The registry host[:port] an image reference names, or "docker.io" for Docker Hub.

    As Docker reads it: the first path component is a registry only when the
    reference has more than one and that component has a "." or ":" or is
    "localhost".
    """
    ref = (reference or "").strip()
    first, sep, _rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def match_registry(reference, registries):
    """The registry (among `registries`) whose host[:port] the image reference names."""
    host = reference_host(reference)
    for registry in registries:
        if registry.address == host or (host in DOCKER_HUB_HOSTS and registry.is_docker_hub):
            return registry
    return None


# ---------------------------------------------------------------- credentials and access


@sensitive_variables()
def auth_config_for(registry):
    """docker-py's `auth_config` for pulls and pushes. Worker jobs only: it holds the secret."""
    return {
        "username": registry.username,
        "password": registry.password,
        "serveraddress": registry.address,
    }


def registries_for(user, team, action="use"):
    """The registries `user` may `action` ("use" = pull/push) for `team`.

    A registry counts when it is granted to that team (or to all teams) and the
    user's role in that team is enough for `action`; dashboard admins may use every
    registry for any team.
    """
    qs = Registry.objects.all()
    if access.is_admin(user):
        return access.restrict(user, qs, action)
    need = access._min_role(access.REGISTRY_ACTIONS, action)
    if need is None or team is None:
        return qs.none()
    role = (
        Membership.objects.filter(user=user, team=team).values_list("role", flat=True).first()
        if user.is_authenticated and user.is_active
        else None
    )
    if role not in access.roles_at_least(need):
        return qs.none()
    return qs.filter(Q(all_teams=True) | Q(teams=team)).distinct()


def auth_for(user, team, reference, registry_id=None):
    """For a pull or push job, in the worker: (registry, auth_config) for `reference`,
    or (None, None) when no registry the user may use for `team` names its host.

    With `registry_id` (the user picked a registry) that registry must be one the user
    may use for the team, and the reference must name its host; otherwise
    PermissionDenied (not granted) or RegistryInputError (another host). The access
    check runs again here: a grant revoked after the click stops the job.
    """
    usable = registries_for(user, team, "use")
    if registry_id is None:
        registry = match_registry(reference, usable)
    else:
        registry = usable.filter(pk=registry_id).first()
        if registry is None:
            raise PermissionDenied("This registry is not granted to the team (any more).")
        if match_registry(reference, [registry]) is None:
            raise RegistryInputError(
                f"{reference} is not in registry {registry.name} ({registry.address})."
            )
    if registry is None:
        return None, None
    return registry, auth_config_for(registry)


def visible(user, action="view"):
    return access.restrict(user, Registry.objects.all(), action)


def allowed_actions(user, registry):
    """Actions the user may do on one registry (for buttons)."""
    return {a for a in access.REGISTRY_ACTIONS if access.can(user, registry, a)}


# ---------------------------------------------------------------- admin changes


def _require_manage(actor):
    if not (actor.is_system or access.is_admin(actor.user)):
        raise PermissionDenied("Only dashboard admins manage registries.")


def _describe(registry):
    # What an audit entry may say about a registry: never the secret.
    return {
        "url": registry.url,
        "username": registry.username,
        "all_teams": registry.all_teams,
        "teams": sorted(registry.teams.values_list("name", flat=True)),
        "tls_verify": registry.tls_verify,
        "ca_cert": bool(registry.ca_cert),
    }


@sensitive_variables("password")  # kept out of error reports
@transaction.atomic
def save_registry(
    actor,
    registry=None,
    *,
    name,
    url,
    username="",
    password=None,
    teams=(),
    all_teams=False,
    tls_verify=True,
    ca_cert="",
):
    """Create (`registry` None) or update a registry; audited without the secret.

    `password` None keeps the stored one; "" clears it; anything else replaces it.
    """
    _require_manage(actor)
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise RegistryInputError("A registry needs a name of 1 to 64 characters.")
    clash = Registry.objects.filter(name=name)
    if registry is not None:
        clash = clash.exclude(pk=registry.pk)
    if clash.exists():
        raise RegistryInputError(f"There is already a registry named {name!r}.")
    url = normalize_url(url)
    creating = registry is None
    if creating:
        registry = Registry(created_by=actor.user if actor.user else None)
    registry.name, registry.url, registry.username = name, url, (username or "").strip()
    registry.all_teams, registry.tls_verify = bool(all_teams), bool(tls_verify)
    registry.ca_cert = (ca_cert or "").strip()
    # The audit entry says what happened to the password, never what it is.
    if creating:
        what = "set" if password else "none"
    elif password is None or password == registry.password:
        what = "kept"
    else:
        what = "changed" if password else "cleared"
    if password is not None:
        registry.password = password
    registry.save()
    registry.teams.set(list(teams))
    params = {**_describe(registry), "password": what}
    record(
        actor,
        "registry.create" if creating else "registry.update",
        target=registry,
        target_type="registry",
        params=params,
    )
    return registry


@transaction.atomic
def delete_registry(actor, registry):
    _require_manage(actor)
    params = _describe(registry)
    record(actor, "registry.delete", target=registry, target_type="registry", params=params)
    registry.delete()


def teams_by_name(names):
    """Team objects for names; raises RegistryInputError naming the unknown ones."""
    names = [n for n in names if n]
    found = {t.name: t for t in Team.objects.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise RegistryInputError(f"No team named {', '.join(map(repr, missing))}.")
    return [found[n] for n in names]


# ---------------------------------------------------------------- registry reads and writes


def acting_team(user, registry, action):
    """The team through which a non-admin may `action` the registry (audit entries go to
    it, so the team sees what its members did); None for dashboard admins."""
    if access.is_admin(user):
        return None
    roles = access.roles_at_least(access.REGISTRY_ACTIONS[action])
    teams = Team.objects.filter(memberships__user=user, memberships__role__in=roles)
    if not registry.all_teams:
        teams = teams.filter(registries=registry)
    return teams.order_by("name").first()


def check_login(registry):
    """ "Test login": GET /v2/ with the stored credentials. Returns (ok, message) and
    remembers the outcome on the registry."""
    try:
        with RegistryClient(registry) as client:
            ok, message = True, client.check_login()
    except RegistryError as exc:
        ok, message = False, exc.message
    registry.last_checked = timezone.now()
    registry.last_error = "" if ok else message
    Registry.objects.filter(pk=registry.pk).update(
        last_checked=registry.last_checked, last_error=registry.last_error
    )
    return ok, message


def request_delete_tag(actor, registry, repository, tag, digest):
    """Queue the deletion of `repository:tag` (by its digest, as the registry wants).

    `digest` is what the user saw: if the tag has moved since, the job refuses, so
    a click never deletes an image nobody looked at.
    """
    access.require(actor.user, registry, "delete_tag")
    if not valid_repository(repository) or not valid_tag(tag) or not DIGEST_RE.match(digest):
        raise RegistryInputError("Not a repository name, tag and digest.")
    return jobs.enqueue(
        actor,
        "registry.delete_tag",
        target=f"{registry.name}: {repository}:{tag}",
        params={
            "action": "delete tag",  # what the job page calls it
            "registry": registry.pk,
            "repository": repository,
            "tag": tag,
            "digest": digest,
        },
    )
