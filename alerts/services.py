"""Alert rules and silences: who may scope them where, and the writes (with audit)."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from containers.models import Container
from dashboard import access, audit
from dashboard.models import Host, Team

from . import rules
from .models import Alert, AlertRule, AlertState, Notification, Silence


class RuleError(Exception):
    """Bad rule or silence data: `errors` is {field: message}."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- Who may scope a rule where ----------------------------------------------------------


def writable_teams(user):
    """Teams whose rules and silences `user` may make: operator or admin of the team."""
    return access.restrict(user, Team.objects.all(), "create_container")


def scope_hosts(user):
    return access.restrict(user, Host.objects.all(), "view")


def scope_containers(user):
    qs = Container.objects.present().select_related("host", "team")
    if access.is_admin(user):
        return qs
    return access.restrict(user, qs, "view").filter(team__in=writable_teams(user))


def check_scope(actor, team, host=None, container=None):
    """Raise PermissionDenied unless the actor may watch this scope.

    Dashboard admins (and the server's own shell): any scope, team or none. Everyone
    else: a team they operate, hosts granted to it, that team's own containers.
    """
    if actor.is_system or access.is_admin(actor.user):
        return
    user = actor.user
    if team is None:
        raise PermissionDenied("Only dashboard admins make rules and silences over all teams.")
    if not writable_teams(user).filter(pk=team.pk).exists():
        raise PermissionDenied(f"You need the operator role in team {team.name}.")
    if host is not None and not scope_hosts(user).filter(pk=host.pk).exists():
        raise PermissionDenied("You cannot use that host.")
    if container is not None and not scope_containers(user).filter(pk=container.pk).exists():
        raise PermissionDenied("You cannot watch that container.")


# --- Rules ---------------------------------------------------------------------------------


def _params(rule):
    return {
        "team": rule.team.name if rule.team else None,
        "host": rule.host.name if rule.host else None,
        "container": rule.container.name if rule.container else None,
        "name_glob": rule.name_glob,
        "condition": rule.condition,
        "window": rule.window_seconds,
        "for": rule.for_seconds,
        "repeat": rule.repeat_seconds,
        "send_resolved": rule.send_resolved,
        "recipients": len(rule.recipients),  # addresses stay out of the audit log
        "enabled": rule.enabled,
    }


def _apply(rule, data):
    changed = []
    for field in rules.FIELDS:
        if field not in data:
            continue
        value = data[field]
        current = getattr(rule, field)
        if field in ("team", "host", "container"):
            current = getattr(rule, f"{field}_id")
            value = value.pk if value is not None else None
            if current != value:
                setattr(rule, f"{field}_id", value)
                changed.append(field)
        elif current != value:
            setattr(rule, field, value)
            changed.append(field)
    return changed


def _validate(data):
    errors = rules.check(data)
    if errors:
        raise RuleError(errors)


def create_rule(actor, data, source=AlertRule.Source.UI):
    check_scope(actor, data.get("team"), data.get("host"), data.get("container"))
    _validate(data)
    if AlertRule.objects.filter(name=data["name"]).exists():
        raise RuleError({"name": f"a rule named {data['name']!r} exists already"})
    with transaction.atomic():
        rule = AlertRule(source=source, created_by=actor.user if actor.user else None)
        _apply(rule, data)
        rule.save()
        audit.record(
            actor, "alert_rule.create", team=rule.team, host=rule.host, target=rule.name,
            target_type="alert rule", params=_params(rule),
        )  # fmt: skip
    return rule


def update_rule(actor, rule, data, source=None):
    """Change a rule; returns the changed field names ([] : nothing changed, nothing written)."""
    check_scope(actor, rule.team, rule.host, rule.container)  # may touch the old scope
    check_scope(actor, data.get("team"), data.get("host"), data.get("container"))
    _validate(data)
    clash = AlertRule.objects.filter(name=data["name"]).exclude(pk=rule.pk)
    if clash.exists():
        raise RuleError({"name": f"a rule named {data['name']!r} exists already"})
    changed = _apply(rule, data)
    if source and rule.source != source:
        rule.source = source
    if not changed:
        return []
    with transaction.atomic():
        rule.save()
        if {"metric", "event", "op", "threshold", "team", "host", "container", "name_glob"} & set(
            changed
        ):
            # What the old states judged is not this rule any more: start afresh.
            _end_states(rule, "rule changed")
        audit.record(
            actor, "alert_rule.update", team=rule.team, host=rule.host, target=rule.name,
            target_type="alert rule", params={"changed": changed, **_params(rule)},
        )  # fmt: skip
    return changed


def _end_states(rule, reason):
    now = timezone.now()
    Alert.objects.filter(rule=rule, resolved_at__isnull=True).update(
        resolved_at=now, end_reason=reason
    )
    AlertState.objects.filter(rule=rule).delete()


def set_enabled(actor, rule, enabled):
    check_scope(actor, rule.team, rule.host, rule.container)
    if rule.enabled == enabled:
        return False
    with transaction.atomic():
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
        if not enabled:
            _end_states(rule, "rule disabled")
        audit.record(
            actor, "alert_rule.enable" if enabled else "alert_rule.disable", team=rule.team,
            host=rule.host, target=rule.name, target_type="alert rule",
        )  # fmt: skip
    return True


def delete_rule(actor, rule):
    check_scope(actor, rule.team, rule.host, rule.container)
    with transaction.atomic():
        _end_states(rule, "rule deleted")
        # Emails not yet sent about a deleted rule are not sent.
        Notification.objects.filter(alert__rule=rule, status=Notification.Status.PENDING).update(
            status=Notification.Status.FAILED, last_error="The rule was deleted."
        )
        audit.record(
            actor, "alert_rule.delete", team=rule.team, host=rule.host, target=rule.name,
            target_type="alert rule", params=_params(rule),
        )  # fmt: skip
        rule.delete()


# --- Silences -----------------------------------------------------------------------------


def create_silence(actor, team, ends_at, comment, rule=None, host=None, container_glob="*"):
    errors = {}
    now = timezone.now()
    if ends_at is None or ends_at <= now:
        errors["ends_at"] = "the end must be in the future"
    elif (ends_at - now).days > 366:
        errors["ends_at"] = "at most a year"
    if not (comment or "").strip():
        errors["comment"] = "say why (the comment is shown with the silence)"
    if not rules.GLOB_RE.match(container_glob or "*"):
        errors["container_glob"] = "a container name glob (letters, digits, _ . - and * ? [ ])"
    if rule is not None and team is not None and rule.team_id != team.pk:
        errors["rule"] = "the rule belongs to another team"
    if errors:
        raise RuleError(errors)
    check_scope(actor, team, host)
    if rule is not None and not (actor.is_system or access.can(actor.user, rule, "change")):
        raise PermissionDenied("You may not silence that rule.")
    with transaction.atomic():
        silence = Silence.objects.create(
            team=team, rule=rule, host=host, container_glob=container_glob or "*",
            comment=comment.strip()[:500], starts_at=now, ends_at=ends_at,
            created_by=actor.user if actor.user else None,
        )  # fmt: skip
        audit.record(
            actor, "silence.create", team=team, host=host, target=f"silence {silence.pk}",
            target_type="silence",
            params={"rule": rule.name if rule else None, "container_glob": silence.container_glob,
                    "ends_at": ends_at.isoformat(), "comment": silence.comment},
        )  # fmt: skip
    return silence


def expire_silence(actor, silence):
    check_scope(actor, silence.team, silence.host)
    now = timezone.now()
    if silence.ends_at <= now:
        return False
    with transaction.atomic():
        silence.ends_at = now
        silence.save(update_fields=["ends_at"])
        audit.record(
            actor, "silence.expire", team=silence.team, host=silence.host,
            target=f"silence {silence.pk}", target_type="silence",
        )  # fmt: skip
    return True


# --- Reading alerts -----------------------------------------------------------------------


def visible_alerts(user, queryset=None):
    """Alerts about what the user may see: a container they can view, or (host alerts)
    a host they can view from a rule of their own teams; dashboard admins see all."""
    qs = Alert.objects.all() if queryset is None else queryset
    if access.is_admin(user):
        return qs
    containers = access.restrict(user, Container.objects.all(), "view").values("pk")
    hosts = scope_hosts(user).values("pk")
    teams = access.restrict(user, Team.objects.all(), "view").values("pk")
    return qs.filter(
        Q(container__in=containers)
        | Q(container__isnull=True, container_name="", host__in=hosts, rule_team__in=teams)
    )
