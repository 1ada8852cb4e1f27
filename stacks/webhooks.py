"""Deploy webhooks: `POST /hooks/stacks/<uuid>/`, signed like GitHub's, or a bearer secret.

The signature is checked in constant time before anything else is read from the
body; a bad or missing one gets 403 and changes nothing (it is audited). A
delivery id seen before (X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Delivery-Id;
for a signed call without one, the body's digest) is a replay: 200, nothing done.
Accepted calls are rate-limited per stack; the deploy is a job of the stack, so
concurrent deliveries queue behind each other.
"""

import hashlib
import hmac
import json
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from dashboard.audit import Actor, client_ip, record
from dashboard.models import AuditEntry

from . import services
from .models import Stack, WebhookDelivery

DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitlab-Event-UUID", "X-Delivery-Id")


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(stack, body, sig_header, auth_header):
    """True when the call carries the stack's HMAC signature or its secret as a bearer token."""
    secret = stack.webhook_secret
    if sig_header:
        return hmac.compare_digest(sig_header.strip().encode(), signature(secret, body).encode())
    scheme, _, token = (auth_header or "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return hmac.compare_digest(token.strip().encode(), secret.encode())
    return False


def _delivery_id(request, body, signed):
    for header in DELIVERY_HEADERS:
        value = (request.headers.get(header) or "").strip()
        if value:
            return value[:128]
    if signed:
        return "body:" + hashlib.sha256(body).hexdigest()
    return ""


def _pushed(body):
    """(branch ref, commit) a push payload names, when it is GitHub/Gitea/GitLab-shaped."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return "", ""
    if not isinstance(payload, dict):
        return "", ""
    ref = payload.get("ref") if isinstance(payload.get("ref"), str) else ""
    after = payload.get("after") if isinstance(payload.get("after"), str) else ""
    return ref, after if len(after) == 40 else ""


@csrf_exempt
@login_not_required
@require_POST
def stack_webhook(request, uuid):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.STACKS_WEBHOOK_MAX_BYTES:
        return JsonResponse({"error": "payload too large"}, status=413)
    stack = (
        Stack.objects.present()
        .select_related("host", "team", "owner")
        .filter(webhook_uuid=uuid)
        .first()
    )
    if stack is None:
        return JsonResponse({"error": "not found"}, status=404)
    body = request.body
    ip = client_ip(request)
    sig = request.headers.get("X-Hub-Signature-256", "")
    if not verify(stack, body, sig, request.headers.get("Authorization", "")):
        record(
            Actor(None, ip),
            "stack.webhook",
            target=stack,
            target_type="stack",
            result=AuditEntry.Result.DENIED,
            message="webhook call with a missing or wrong signature",
        )
        return JsonResponse({"error": "bad signature"}, status=403)
    if request.headers.get("X-GitHub-Event") == "ping":
        return JsonResponse({"status": "pong"})
    ref, commit = _pushed(body)
    if ref and stack.source == Stack.Source.GIT and ref != f"refs/heads/{stack.git_branch}":
        return JsonResponse(
            {"status": "ignored", "reason": f"not branch {stack.git_branch}"}, status=202
        )
    recent = WebhookDelivery.objects.filter(
        stack=stack, received_at__gte=timezone.now() - timedelta(minutes=1)
    ).count()
    if recent >= settings.STACKS_WEBHOOK_PER_MINUTE:
        return JsonResponse({"error": "too many deliveries; try again in a minute"}, status=429)
    delivery = _delivery_id(request, body, bool(sig)) or "call:" + timezone.now().isoformat()
    try:
        with transaction.atomic():
            row = WebhookDelivery.objects.create(stack=stack, delivery=delivery, source_ip=ip)
            job = services.request_webhook_deploy(stack, ip, delivery, commit)
            WebhookDelivery.objects.filter(pk=row.pk).update(job_id=job.pk)
    except IntegrityError:
        return JsonResponse({"status": "duplicate delivery ignored"})
    return JsonResponse({"status": "queued", "job": job.pk}, status=202)
