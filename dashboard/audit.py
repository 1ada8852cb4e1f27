"""Writing audit entries. Service functions call `record`; nothing else writes them."""

from dataclasses import dataclass

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

    @classmethod
    def from_request(cls, request):
        return cls(request.user, client_ip(request))

    @classmethod
    def from_job(cls, job):
        return cls(job.user, job.source_ip)

    @classmethod
    def system(cls):
        return cls(None, None, is_system=True)


def _nobody(actor):
    return "system" if actor is None or actor.is_system else "(deleted user)"


def client_ip(request):
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted
    # proxy rewrites it, and a forgeable audit address is worse than none.
    return request.META.get("REMOTE_ADDR") or None


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
):
    """Append one audit entry. `target` may be a model instance or a string."""
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
    return AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else _nobody(actor),
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
        message=message[:4000],
    )
