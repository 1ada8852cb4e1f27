"""Celery tasks of the console app (thin)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from dashboard.models import AuditEntry

from .models import ConsoleSession


@shared_task
def close_lost_sessions():
    """Sessions whose server died mid-session: their audit intent gets "outcome unknown".

    An open session renews `last_seen` at each access re-check; one not renewed for
    several re-check periods has no server behind it any more.
    """
    stale = timezone.now() - timedelta(seconds=max(60, 6 * settings.ACCESS_RECHECK_SECONDS))
    closed = 0
    for session in ConsoleSession.objects.filter(ended_at__isnull=True, last_seen__lt=stale):
        entry = AuditEntry.objects.filter(pk=session.audit_entry_id).first()
        if entry is not None:
            entry.complete(
                AuditEntry.Result.UNKNOWN,
                f"the server was lost during the session (last seen {session.last_seen:%H:%M:%S});"
                " what ran after that is not recorded",
            )
        ConsoleSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=session.last_seen
        )
        closed += 1
    return {"closed": closed}
