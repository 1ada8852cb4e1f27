"""Checking a rule's fields, shared by the form and `load_alert_rules`.

`check(data)` returns {field: message} for what is wrong; empty means fine. It never
looks at who asks: scope permissions are `services.check_scope`.
"""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from . import metrics
from .models import OPS, Event

DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = 30 * 86400
MAX_RECIPIENTS = 20
GLOB_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,255}$")

FIELDS = (
    "name team host container name_glob metric op threshold window_seconds event "
    "restart_count restart_window_seconds for_seconds repeat_seconds send_resolved "
    "recipients enabled"
).split()


def parse_duration(value, what="duration"):
    """'90s', '5m', '1h', '2d' or a number of seconds → int seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a duration like 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"{what}: expected a duration like 30s, 5m or 1h, got {value!r}")
        seconds = float(m.group(1)) * UNITS[m.group(2)]
    if seconds < 0 or seconds > MAX_DURATION:
        raise ValueError(f"{what}: must be between 0 and 30 days")
    return int(seconds)


def format_duration(seconds):
    if not seconds:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_recipients(value):
    """A list, or text separated by commas, spaces or new lines → list of addresses."""
    if isinstance(value, str):
        items = [v for v in re.split(r"[\s,;]+", value) if v]
    elif isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        raise ValueError("recipients: expected a list of email addresses")
    return list(dict.fromkeys(items))


def check(data):
    errors = {}
    name = (data.get("name") or "").strip()
    if not name or len(name) > 100 or not re.match(r"^[\w .:@+-]+$", name):
        errors["name"] = "a name of 1-100 letters, digits, spaces and . : @ + - _"
    metric, event = data.get("metric") or "", data.get("event") or ""
    if bool(metric) == bool(event):
        errors["metric"] = "choose either a metric or an event"
    elif metric:
        if metric not in metrics.names():
            known = ", ".join(metrics.names()) or "none (the metrics app is not installed)"
            errors["metric"] = f"unknown metric {metric!r}; known: {known}"
        if data.get("op") not in OPS:
            errors["op"] = f"operator must be one of {', '.join(OPS)}"
        threshold = data.get("threshold")
        if threshold is None or isinstance(threshold, bool):
            errors["threshold"] = "a metric rule needs a numeric threshold"
        else:
            try:
                data["threshold"] = float(threshold)
            except (TypeError, ValueError):
                errors["threshold"] = "a metric rule needs a numeric threshold"
        if not 10 <= (data.get("window_seconds") or 0) <= 86400:
            errors["window_seconds"] = "window: between 10 s and 1 day"
    elif event not in Event.values:
        errors["event"] = f"unknown event {event!r}; known: {', '.join(Event.values)}"
    elif event == Event.RESTART_LOOP:
        if not 1 <= (data.get("restart_count") or 0) <= 1000:
            errors["restart_count"] = "restarts: between 1 and 1000"
        if not 60 <= (data.get("restart_window_seconds") or 0) <= 86400:
            errors["restart_window_seconds"] = "restart window: between 1 minute and 1 day"
    glob = data.get("name_glob") or "*"
    if not GLOB_RE.match(glob):
        errors["name_glob"] = "a container name glob (letters, digits, _ . - and * ? [ ])"
    recipients = data.get("recipients") or []
    if not recipients:
        errors["recipients"] = "at least one email address"
    elif len(recipients) > MAX_RECIPIENTS:
        errors["recipients"] = f"at most {MAX_RECIPIENTS} addresses"
    else:
        for r in recipients:
            try:
                validate_email(r)
            except ValidationError:
                errors["recipients"] = f"not an email address: {r!r}"
                break
    team, host, container = data.get("team"), data.get("host"), data.get("container")
    if container is not None:
        if team is not None and container.team_id != team.pk:
            errors["container"] = "the container does not belong to the rule's team"
        if host is not None and container.host_id != host.pk:
            errors["container"] = "the container is not on the rule's host"
    if host is not None and team is not None:
        if not (host.all_teams or host.teams.filter(pk=team.pk).exists()):
            errors["host"] = f"host {host.name} is not granted to team {team.name}"
    if event == Event.HOST_UNREACHABLE and container is not None:
        errors["container"] = "a host-unreachable rule is about hosts, not one container"
    return errors
