"""Rules as code: read the YAML file of `manage.py load_alert_rules` and apply it.

Shape::

    rules:
      - name: hot-cpu
        match: {container: "web-*", team: blue, host: local}   # all optional
        metric: cpu_percent
        op: ">"
        threshold: 80
        window: 1m            # average over (default 1m)
        for: 1m               # must hold this long before firing (default 0)
        repeat: 4h            # email again while firing (default: never)
        send_resolved: true   # default true
        recipients: [ops@example.com]
        enabled: true         # default true
      - name: died
        match: {container: "*"}
        event: died_nonzero   # died_nonzero oom unhealthy restart_loop host_unreachable
        restarts: 3           # restart_loop only: this many restarts …
        within: 10m           # … within this long
        recipients: [ops@example.com]

Rules are created or updated by name; fields a rule leaves out take their defaults,
so the file is the whole truth about the rules it names. Everything is checked before
anything is written: one bad rule and nothing changes.
"""

import yaml
from django.db import transaction

from dashboard.audit import Actor
from dashboard.models import Host, Team

from . import rules, services
from .models import AlertRule

KEYS = {"name", "match", "metric", "op", "threshold", "window", "for", "repeat",
        "send_resolved", "recipients", "enabled", "event", "restarts", "within"}  # fmt: skip
MATCH_KEYS = {"container", "team", "host"}


class LoadError(Exception):
    pass


def parse(text):
    """YAML text → [(name, data dict)]; raises LoadError with every problem found."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise LoadError(f"not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise LoadError("the file must be a mapping with a list under `rules:`")
    extra = set(doc) - {"rules"}
    if extra:
        raise LoadError(f"unknown top-level key(s): {', '.join(sorted(map(str, extra)))}")
    problems, out, seen = [], [], set()
    for i, item in enumerate(doc["rules"], 1):
        label = f"rule {i}"
        if not isinstance(item, dict):
            problems.append(f"{label}: expected a mapping with name, match, metric or event, …")
            continue
        name = item.get("name")
        if isinstance(name, str) and name.strip():
            label = f"rule {i} ({name})"
        try:
            data = _data(item)
        except (LoadError, ValueError) as exc:
            problems.append(f"{label}: {exc}")
            continue
        errors = rules.check(data)
        if errors:
            problems += [f"{label}: {_yaml_name(k)}: {v}" for k, v in errors.items()]
            continue
        if data["name"] in seen:
            problems.append(f"{label}: the name {data['name']!r} is used twice in the file")
        seen.add(data["name"])
        out.append((data["name"], data))
    if problems:
        raise LoadError("\n".join(problems))
    return out


def _yaml_name(field):
    return {
        "window_seconds": "window",
        "for_seconds": "for",
        "repeat_seconds": "repeat",
        "restart_count": "restarts",
        "restart_window_seconds": "within",
        "name_glob": "match.container",
        "team": "match.team",
        "host": "match.host",
    }.get(field, field)


def _data(item):
    unknown = set(item) - KEYS
    if unknown:
        raise LoadError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    match = item.get("match") or {}
    if not isinstance(match, dict):
        raise LoadError("match: expected a mapping like {container: 'web-*', team: blue}")
    if set(match) - MATCH_KEYS:
        raise LoadError(
            f"match: unknown key(s) {', '.join(sorted(map(str, set(match) - MATCH_KEYS)))}"
        )
    team = host = None
    if match.get("team") is not None:
        team = Team.objects.filter(name=str(match["team"])).first()
        if team is None:
            raise LoadError(f"match.team: no team named {match['team']!r}")
    if match.get("host") is not None:
        host = Host.objects.filter(name=str(match["host"])).first()
        if host is None:
            raise LoadError(f"match.host: no host named {match['host']!r}")
    for key in ("send_resolved", "enabled"):
        if key in item and not isinstance(item[key], bool):
            raise LoadError(f"{key}: true or false")
    restarts = item.get("restarts", 3)
    if isinstance(restarts, bool) or not isinstance(restarts, int):
        raise LoadError("restarts: a whole number")
    threshold = item.get("threshold")
    return {
        "name": str(item.get("name") or "").strip(),
        "team": team,
        "host": host,
        "container": None,
        "name_glob": str(match.get("container") or "*"),
        "metric": str(item.get("metric") or ""),
        "op": str(item.get("op") or ">"),
        "threshold": threshold,
        "window_seconds": rules.parse_duration(item.get("window", 60), "window"),
        "event": str(item.get("event") or ""),
        "restart_count": restarts,
        "restart_window_seconds": rules.parse_duration(item.get("within", 600), "within"),
        "for_seconds": rules.parse_duration(item.get("for", 0), "for"),
        "repeat_seconds": rules.parse_duration(item.get("repeat", 0), "repeat"),
        "send_resolved": item.get("send_resolved", True),
        "recipients": rules.parse_recipients(item.get("recipients") or []),
        "enabled": item.get("enabled", True),
    }


def load(text, actor=None):
    """Apply the file; returns [(name, "created" | "updated: fields" | "unchanged")]."""
    actor = actor or Actor.system()
    parsed = parse(text)
    report = []
    with transaction.atomic():
        for name, data in parsed:
            rule = AlertRule.objects.filter(name=name).first()
            if rule is None:
                services.create_rule(actor, data, source=AlertRule.Source.CODE)
                report.append((name, "created"))
                continue
            changed = services.update_rule(actor, rule, data, source=AlertRule.Source.CODE)
            report.append((name, f"updated: {', '.join(changed)}" if changed else "unchanged"))
    return report
