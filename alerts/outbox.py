"""The notification outbox: rows written with the state change, delivered by a task.

Writing: `enqueue` runs inside the transaction that fires or resolves an alert, so
the email exists exactly when the state change does. One row per (alert event,
recipient), with a unique dedupe key: the same event cannot be queued twice.

Delivery (`deliver_due`, a Celery task kicked on commit and swept by beat, so a
lost broker message loses nothing):
1. claim: a conditional update moves a recipient's due rows from pending to
   sending with a lease (until + a random claim token); only rows whose update
   this worker won are sent, so two workers never send the same row;
2. the rows of one recipient go out as one email (batching; the first row's dedupe
   key is the Message-ID, kept on every row of the batch);
3. just before the message's DATA goes to the server, `handed_over_at` is
   committed; after the server's answer the rows are marked sent, or failed (5xx:
   permanent), or pending again with an exponential back-off (4xx, connection
   errors) — a definite refusal means the server did not take it;
4. recovery (`recover`, every sweep): a row still `sending` after its lease ran out
   belongs to a lost worker. If `handed_over_at` is empty the message never left:
   it is retried. If it is set, the worker died between handing the message over
   and recording the answer, and nobody can know whether the server took it: the
   row becomes `unconfirmed` and is NOT resent, shown as such on the alerts page.
   We chose at-most-once for that window (milliseconds for a healthy server)
   because a duplicate alert trains people to ignore alerts, and everything
   outside that window is at-least-once with retries, which the outbox and the
   dedupe key make exactly-once. A receiving system that deduplicates by
   Message-ID could take the other choice; ours is a setting away
   (ALERT_EMAIL_RESEND_UNCONFIRMED).
"""

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from .models import Notification, Silence

log = logging.getLogger(__name__)

N = Notification.Status


def silenced(rule, container=None, host=None, now=None):
    """Is there an active silence covering this rule's alert for the subject?"""
    candidates = Silence.objects.active(now).filter(rule__isnull=True) | Silence.objects.active(
        now
    ).filter(rule=rule)
    return any(s.matches(rule, container=container, host=host) for s in candidates)


def _key(alert, kind, n, recipient):
    digest = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"alert{alert.pk}.{kind}{n}.{digest}"


def enqueue(alert, rule, kind, *, container=None, host=None, now=None):
    """Queue one email per recipient for this alert event, unless silenced.

    Must run inside the transaction that changed the alert's state. Returns False
    when a silence covers it (nothing queued).
    """
    now = now or timezone.now()
    if silenced(rule, container=container, host=host, now=now):
        return False
    # A firing and a resolution happen once per alert; repeats are told apart by time.
    n = int(now.timestamp()) if kind == "repeat" else ""
    due = now + timedelta(seconds=settings.ALERT_EMAIL_BATCH_SECONDS)
    rows = [
        Notification(
            alert=alert,
            kind=kind,
            recipient=r,
            dedupe_key=_key(alert, kind, n, r),
            next_attempt_at=due,
            created_at=now,
        )
        for r in dict.fromkeys(rule.recipients)
    ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(_kick)
    return True


def _kick():
    from .tasks import deliver_due

    try:
        deliver_due.apply_async(countdown=settings.ALERT_EMAIL_BATCH_SECONDS)
    except Exception:  # the broker is down: the beat sweep will find the rows
        log.warning("could not queue alert delivery; the periodic sweep will send it")


# --- Delivery ----------------------------------------------------------------------------


def backoff(attempts):
    base = settings.ALERT_EMAIL_RETRY_BASE_SECONDS
    return min(base * 2 ** max(0, attempts - 1), settings.ALERT_EMAIL_RETRY_MAX_SECONDS)


def recover(now=None):
    """Rows of lost workers: retried if never handed over, `unconfirmed` otherwise."""
    now = now or timezone.now()
    lost = Notification.objects.filter(status=N.SENDING, lease_until__lt=now)
    retry = lost.filter(handed_over_at__isnull=True)
    if settings.ALERT_EMAIL_RESEND_UNCONFIRMED:
        retry = lost
    n_retry = retry.update(status=N.PENDING, claim="", lease_until=None, next_attempt_at=now)
    n_unknown = lost.update(
        status=N.UNCONFIRMED,
        claim="",
        last_error="The worker stopped while the mail server was receiving this email; "
        "not sent again to avoid a duplicate.",
    )
    return n_retry, n_unknown


def deliver_due(now=None, limit=50):
    """Send every due email (one per recipient, batched); returns emails sent."""
    recover(now)
    sent = 0
    now = now or timezone.now()
    recipients = list(
        Notification.objects.filter(status=N.PENDING, next_attempt_at__lte=now)
        .values_list("recipient", flat=True)
        .distinct()[:limit]
    )
    for recipient in recipients:
        if _rate_limited(recipient, now):
            continue
        rows = _claim(recipient, now)
        if rows:
            sent += _send(rows)
    return sent


def _rate_limited(recipient, now):
    """At most ALERT_EMAIL_RATE_PER_HOUR emails to one address per hour; the rest waits
    (and is batched into the next email), never dropped."""
    limit = settings.ALERT_EMAIL_RATE_PER_HOUR
    if not limit:
        return False
    hour = now - timedelta(hours=1)
    recent = Notification.objects.filter(recipient=recipient, sent_at__gt=hour)
    if recent.values("message_id").distinct().count() < limit:
        return False
    oldest = recent.aggregate(t=Min("sent_at"))["t"] or now
    Notification.objects.filter(recipient=recipient, status=N.PENDING).update(
        next_attempt_at=oldest + timedelta(hours=1)
    )
    return True


def _claim(recipient, now):
    token = secrets.token_hex(8)
    lease = now + timedelta(seconds=settings.ALERT_EMAIL_LEASE_SECONDS)
    # Due rows plus rows still in their batching window: one email takes them all.
    ids = list(
        Notification.objects.filter(recipient=recipient, status=N.PENDING)
        .filter(next_attempt_at__lte=now + timedelta(seconds=settings.ALERT_EMAIL_BATCH_SECONDS))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:20]
    )
    if not ids:
        return []
    with transaction.atomic():
        Notification.objects.filter(pk__in=ids, status=N.PENDING).update(
            status=N.SENDING, claim=token, lease_until=lease, handed_over_at=None
        )
        rows = list(
            Notification.objects.filter(claim=token, status=N.SENDING)
            .select_related("alert", "alert__container", "alert__host", "alert__rule")
            .order_by("created_at", "pk")
        )
        if not rows:
            return []
        message_id = rows[0].message_id or make_message_id(rows[0].dedupe_key)
        for row in rows:
            row.attempts += 1
            row.message_id = message_id
        Notification.objects.bulk_update(rows, ["attempts", "message_id"])
    return rows


def make_message_id(key):
    sender = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "dockyard.local"
    return f"<{key}@{sender}>"


def _send(rows):
    from .emails import build_message

    token = rows[0].claim
    pks = [r.pk for r in rows]
    mine = Notification.objects.filter(pk__in=pks, claim=token, status=N.SENDING)
    message = build_message(rows)
    connection = mail.get_connection(fail_silently=False)
    handed = []

    def hand_over():
        # Committed before DATA: from here a lost worker's rows become `unconfirmed`.
        handed.append(mine.update(handed_over_at=timezone.now()))

    try:
        connection.open()
        smtp = getattr(connection, "connection", None)
        if isinstance(smtp, smtplib.SMTP):
            data = smtp.data

            def data_after_hand_over(msg):
                hand_over()
                return data(msg)

            smtp.data = data_after_hand_over
        else:
            hand_over()  # a local backend (console, file, memory): no server to ask
        count = connection.send_messages([message])
        if not count:
            raise smtplib.SMTPException("the mail backend sent nothing")
    except Exception as exc:
        _failed(mine, rows, exc, bool(handed))
        return 0
    finally:
        try:
            connection.close()
        except Exception:  # noqa: S110 - closing a broken connection may fail too
            pass
    mine.update(status=N.SENT, sent_at=timezone.now(), lease_until=None, last_error="")
    return 1


def _code(exc):
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return min(codes) if codes else None
    return getattr(exc, "smtp_code", None)


def _failed(mine, rows, exc, handed_over):
    code = _code(exc)
    text = f"{code} {_text(exc)}" if code else f"{exc.__class__.__name__}: {_text(exc)}"
    text = text[:500]
    now = timezone.now()
    if code is not None and 500 <= code < 600:
        mine.update(status=N.FAILED, last_error=f"Refused for good: {text}", lease_until=None)
        log.warning("alert email to %s refused for good: %s", rows[0].recipient, text)
        return
    if handed_over and code is None and not settings.ALERT_EMAIL_RESEND_UNCONFIRMED:
        # Lost while the server had the message: it may have taken it (see the module doc).
        mine.update(status=N.UNCONFIRMED, last_error=f"No answer after sending: {text}")
        return
    attempts = rows[0].attempts
    if attempts >= settings.ALERT_EMAIL_MAX_ATTEMPTS:
        mine.update(status=N.FAILED, last_error=f"Gave up after {attempts} attempts: {text}")
        return
    mine.update(
        status=N.PENDING,
        claim="",
        lease_until=None,
        handed_over_at=None,
        next_attempt_at=now + timedelta(seconds=backoff(attempts)),
        last_error=text,
    )
    log.info("alert email to %s will be retried: %s", rows[0].recipient, text)


def _text(exc):
    err = getattr(exc, "smtp_error", None)
    if isinstance(err, bytes):
        return err.decode(errors="replace")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            m.decode(errors="replace") if isinstance(m, bytes) else str(m)
            for _c, m in exc.recipients.values()
        )
    return str(exc) or exc.__class__.__name__
