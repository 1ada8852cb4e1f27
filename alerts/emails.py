"""The alert emails: subject and bodies (plain text and HTML, both from templates).

Engine-reported strings (container names, health output, host errors) are escaped in
the HTML part by the template engine and masked for credentials in both parts.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from containers.inspect import mask_credentials

from .evaluate import since_text

VERB = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED"}


def _link(path):
    return settings.DASHBOARD_BASE_URL.rstrip("/") + path


def _fmt(value):
    if value is None:
        return ""
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def item(row):
    """What one outbox row tells: the facts of its alert at this event."""
    alert = row.alert
    link = (
        _link(f"/containers/{alert.container_id}/")
        if alert.container_id
        else _link(f"/hosts/{alert.host_id}/")
        if alert.host_id
        else _link("/monitoring/alerts/")
    )
    return {
        "verb": VERB[row.kind],
        "kind": row.kind,
        "rule": alert.rule_name,
        "container": mask_credentials(alert.container_name),
        "host": alert.host_name,
        "condition": alert.condition,
        "value": _fmt(alert.value),
        "threshold": _fmt(alert.threshold),
        "detail": mask_credentials(alert.detail),
        "since": since_text(alert.since),
        "resolved": since_text(alert.resolved_at),
        "link": link,
        "alerts_link": _link("/monitoring/alerts/"),
    }


def subject(items):
    first = items[0]
    where = f"{first['container']} on {first['host']}" if first["container"] else first["host"]
    if first["container"] == "":
        where = f"host {first['host']}"
    head = f"[Dockyard] {first['verb']}: {first['rule']} — {where}"
    if first["value"] and first["threshold"]:
        head += f" ({first['value']} vs {first['threshold']})"
    if len(items) > 1:
        head += f" and {len(items) - 1} more"
    # No header injection from a name: subjects are one line.
    return " ".join(head.split())[:250]


def build_message(rows):
    items = [item(r) for r in rows]
    context = {"items": items, "alerts_link": items[0]["alerts_link"]}
    text = render_to_string("alerts/email.txt", context)
    html = render_to_string("alerts/email.html", context)
    message = EmailMultiAlternatives(
        subject=subject(items),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[rows[0].recipient],
        headers={"Message-ID": rows[0].message_id, "Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message
