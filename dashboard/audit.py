"""Writing audit entries. Service functions call `record`; nothing else writes them."""

from dataclasses import dataclass

from django.conf import settings
from ipware import get_client_ip
from python_ipware.modern.parsers import split_proxy_chain

from containers.inspect import mask_credentials

from . import access
from .middleware import is_trusted_proxy, parse_ip
from .models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where; built by views, carried by jobs to services.

    `user` None means nobody: a job whose user was deleted, which every gate
    refuses. The server's own shell (management commands) is `Actor.system()`,
    the one actor allowed to act without a user.
    """

    user: object
    source_ip: str | None = None
    is_system: bool = False
    # The API token the request came through (api.models.ApiToken), or None.
    token: object = None

    @classmethod
    def from_request(cls, request):
        return cls(request.user, client_ip(request), token=access.token_of(request.user))

    @classmethod
    def from_job(cls, job):
        return cls(job.user, job.source_ip, token=job.api_token)

    @classmethod
    def system(cls):
        return cls(None, None, is_system=True)


def _nobody(actor):
    return "system" if actor is None or actor.is_system else "(deleted user)"


def client_ip(request):
    """The client's address: the audit log's source IP and django-axes' lockout key.

    REMOTE_ADDR, unless DASHBOARD_TRUSTED_PROXIES says which proxies' X-Forwarded-For
    to believe: X-Forwarded-For is client-controlled, and a forgeable audit address
    (or a lockout a client can dodge by inventing addresses) is worse than none.

    - By address: the peer must be a trusted proxy; the chain is read from the right,
      past the trusted proxies, and the first address that is not one is the client.
    - By count N: the N-th address from the right of the chain the last proxy sent
      plus its own (the peer) is the client (the leftmost if the chain is shorter).
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count, trusted = settings.TRUSTED_PROXY_COUNT, settings.TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not (count or trusted):
        return remote
    if trusted and not is_trusted_proxy(remote):
        return remote
    chain = split_proxy_chain(forwarded) or []
    if not chain:
        return remote
    if trusted:
        # The proxies in the chain: trusted addresses at its right end.
        hops = 0
        for ip in reversed(chain):
            if not is_trusted_proxy(parse_ip(str(ip))):
                break
            hops += 1
    else:
        hops = count - 1  # the last of the N proxies is the peer, not in the chain
    ip, _routable = get_client_ip(
        request,
        proxy_count=min(hops, len(chain) - 1),
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        strict=False,
    )
    return ip or remote


def record(
    actor,
    action,
    *,
    host=None,
    team=None,
    target=None,
    target_type="",
    params=None,
    result=AuditEntry.Result.OK,
    message="",
    job=None,
):
    """Append one audit entry. `target` may be a model instance or a string.

    With `result=PENDING` it is an intent, written before the engine is asked;
    the caller completes it with `entry.complete(result, message)` afterwards.
    """
    user = actor.user if actor and actor.user and actor.user.is_authenticated else None
    target_id, target_name = "", ""
    if target is not None and not isinstance(target, str):
        target_type = target_type or target.__class__.__name__.lower()
        target_id = str(getattr(target, "docker_id", "") or target.pk)
        target_name = str(getattr(target, "name", "") or target)
        if host is None:
            host = getattr(target, "host", None)
        if team is None:
            team = getattr(target, "team", None)
    elif isinstance(target, str):
        target_name = target
    token = actor.token if actor else None
    return AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else _nobody(actor),
        api_token_id=token.pk if token else None,
        api_token_name=token.name[:64] if token else "",
        source_ip=actor.source_ip if actor else None,
        host=host,
        host_name=host.name if host else "",
        team=team,
        target_type=target_type,
        target_id=target_id,
        target_name=target_name[:255],
        action=action,
        params=params or {},
        result=result,
        message=mask_credentials(message)[:4000],
        job_id=getattr(job, "pk", job),
    )
