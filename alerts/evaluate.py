"""The alert state machine: per (rule, container or host) inactive → pending → firing → resolved.

Three callers feed it facts: the collector's sweep (resource rules, `on_sweep`), the
events watcher (`on_container_event`) and a beat tick (`tick`: `for` durations of
lasting conditions, host reachability, restart-loop windows, repeat emails).

Every transition happens in one transaction with the outbox rows it causes
(`outbox.enqueue`), on a state row locked for the update: a worker that dies after
the commit has sent nothing yet but lost nothing (the delivery sweep finds the rows);
one that dies before it changed nothing. Because the state is in the database, a
restarted worker neither fires again what already fired nor forgets a pending `for`.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from containers.models import Container
from dashboard.models import Host

from . import outbox
from .models import OPS, Alert, AlertRule, AlertState, Event

log = logging.getLogger(__name__)

S = AlertState.Status
# Events that happen once (no lasting condition to wait `for`).
INSTANT = {Event.DIED_NONZERO, Event.OOM}


def _subject(container=None, host=None):
    return f"c{container.pk}" if container is not None else f"h{host.pk}"


def _locked_state(rule, container=None, host=None):
    subject = _subject(container, host)
    state, _ = AlertState.objects.get_or_create(
        rule=rule,
        subject=subject,
        defaults={"container": container, "host": host if container is None else container.host},
    )
    return AlertState.objects.select_for_update().get(pk=state.pk)


def step(rule, *, active, container=None, host=None, value=None, detail="", now=None, key=None):
    """Advance (rule, subject) given whether its condition holds now; returns the state.

    `key` identifies the fact (an event's time): a fact already seen is ignored, so a
    replayed event does nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        state = _locked_state(rule, container, host)
        if key is not None:
            if state.data.get("last_key") and str(key) <= str(state.data["last_key"]):
                return state
            state.data = {**state.data, "last_key": str(key)}
        _advance(state, rule, active, container, host, value, detail, now)
        state.save()
    return state


def _advance(state, rule, active, container, host, value, detail, now):
    if value is not None:
        state.value = value
    if active:
        if state.status in (S.INACTIVE, S.RESOLVED):
            state.since = now
            state.status = S.PENDING
        if state.status == S.PENDING:
            waited = (now - state.since).total_seconds()
            if rule.event in INSTANT or waited >= rule.for_seconds:
                _fire(state, rule, container, host, value, detail, now)
        elif state.status == S.FIRING:
            if state.alert_id and value is not None:
                Alert.objects.filter(pk=state.alert_id).update(value=value)
            _maybe_repeat(state, rule, container, host, now)
    elif state.status == S.PENDING:
        state.status, state.since = S.INACTIVE, None
    elif state.status == S.FIRING:
        _resolve(state, rule, container, host, now, reason="", notify=True)


def _fire(state, rule, container, host, value, detail, now):
    subject_host = container.host if container is not None else host
    alert = Alert.objects.create(
        rule=rule,
        rule_name=rule.name,
        rule_team=rule.team,
        container=container,
        container_name=container.name if container is not None else "",
        host=subject_host,
        host_name=subject_host.name if subject_host else "",
        condition=rule.condition[:120],
        value=value,
        threshold=rule.threshold if not rule.event else None,
        detail=detail[:500],
        since=state.since or now,
        fired_at=now,
    )
    state.status, state.alert = S.FIRING, alert
    state.last_notified_at = now
    if outbox.enqueue(alert, rule, "firing", container=container, host=subject_host, now=now):
        return
    alert.silenced = True
    alert.save(update_fields=["silenced"])


def _maybe_repeat(state, rule, container, host, now):
    if not rule.repeat_seconds or state.alert is None:
        return
    last = state.last_notified_at or state.alert.fired_at
    if (now - last).total_seconds() < rule.repeat_seconds:
        return
    state.last_notified_at = now
    subject_host = container.host if container is not None else host
    outbox.enqueue(state.alert, rule, "repeat", container=container, host=subject_host, now=now)


def _resolve(state, rule, container, host, now, reason, notify):
    state.status = S.RESOLVED
    alert = state.alert
    if alert is None or alert.resolved_at is not None:
        return
    alert.resolved_at, alert.end_reason = now, reason[:120]
    alert.save(update_fields=["resolved_at", "end_reason"])
    # A resolution is told only to those who were told of the firing.
    if notify and rule.send_resolved and not alert.silenced:
        subject_host = container.host if container is not None else host
        outbox.enqueue(alert, rule, "resolved", container=container, host=subject_host, now=now)


def mute(states, reason, now=None):
    """End pending/firing states without an email (their container stopped or went)."""
    now = now or timezone.now()
    for pk in list(states.filter(status__in=[S.PENDING, S.FIRING]).values_list("pk", flat=True)):
        with transaction.atomic():
            state = AlertState.objects.select_for_update().select_related("rule").get(pk=pk)
            if state.status == S.PENDING:
                state.status, state.since = S.INACTIVE, None
            elif state.status == S.FIRING:
                _resolve(state, state.rule, None, None, now, reason=reason, notify=False)
            state.save()


# --- Resource rules, after each collector sweep --------------------------------------


def on_sweep(host_id, at=None, container_ids=()):
    """Evaluate every enabled resource rule over the containers this sweep sampled."""
    from . import metrics

    now = timezone.now()
    rules = list(AlertRule.objects.filter(enabled=True, event="").exclude(metric=""))
    # This runs after every sweep of every host: with no resource rule there is nothing
    # to match, so the sampled containers are not loaded at all.
    sampled = (
        list(
            Container.objects.filter(pk__in=list(container_ids), host_id=host_id, removed_at=None)
            .select_related("host", "team")
            .filter(state="running")
        )
        if rules
        else []
    )
    for rule in rules:
        if rule.metric not in metrics.names():
            continue
        targets = [c for c in sampled if rule.matches(c)]
        if not targets:
            continue
        values = metrics.window_average([c.pk for c in targets], rule.metric, rule.window_seconds)
        for c in targets:
            value = values.get(c.pk)
            if value is None:
                continue  # no sample in the window yet: judge nothing
            active = OPS[rule.op](value, rule.threshold)
            try:
                step(rule, active=active, container=c, value=value, now=now)
            except Exception:
                log.exception("alert rule %s on container %s failed", rule.name, c.pk)
    # A stopped or removed container on this host mutes its resource rules.
    gone = AlertState.objects.filter(
        rule__event="", container__host_id=host_id, status__in=[S.PENDING, S.FIRING]
    ).exclude(container_id__in=[c.pk for c in sampled] if rules else list(container_ids))
    mute(gone, "container stopped", now)


# --- Event rules, from the events watcher ---------------------------------------------


def _event_rules(kinds, container):
    rules = AlertRule.objects.filter(enabled=True, event__in=kinds).select_related("team")
    return [r for r in rules if r.matches(container)]


def on_container_event(host, container, event):
    """One Docker event of a mirrored container; called by the events watcher."""
    action = event.get("Action") or event.get("status") or ""
    attrs = (event.get("Actor") or {}).get("Attributes") or {}
    key = event.get("timeNano") or event.get("time")
    now = timezone.now()
    if action == "die":
        code = attrs.get("exitCode")
        if code not in (None, "", "0"):
            detail = f"exit code {code}"
            for rule in _event_rules([Event.DIED_NONZERO], container):
                step(
                    rule,
                    active=True,
                    container=container,
                    value=float(code),
                    detail=detail,
                    key=key,
                )
        # A container that stopped is not "unhealthy" any more: end quietly.
        mute(
            AlertState.objects.filter(container=container, rule__event=Event.UNHEALTHY),
            "container stopped",
            now,
        )
    elif action == "oom":
        for rule in _event_rules([Event.OOM], container):
            step(rule, active=True, container=container, detail="killed: out of memory", key=key)
    elif action == "start":
        # Running again: a death or OOM episode is over.
        for rule in _event_rules([Event.DIED_NONZERO, Event.OOM], container):
            step(rule, active=False, container=container, key=key)
        for rule in _event_rules([Event.RESTART_LOOP], container):
            _count_restart(rule, container, now, key)
    elif action.startswith("health_status"):
        status = action.partition(":")[2].strip() or attrs.get("health_status", "")
        if status in ("healthy", "unhealthy"):
            for rule in _event_rules([Event.UNHEALTHY], container):
                step(
                    rule,
                    active=status == "unhealthy",
                    container=container,
                    detail="health check failing" if status == "unhealthy" else "",
                    key=key,
                )
    elif action == "destroy":
        mute(AlertState.objects.filter(container=container), "container removed", now)


def _count_restart(rule, container, now, key):
    with transaction.atomic():
        state = _locked_state(rule, container)
        if key is not None and str(key) <= str(state.data.get("last_key", "")):
            return
        horizon = now.timestamp() - rule.restart_window_seconds
        starts = [t for t in state.data.get("starts", []) if t > horizon] + [now.timestamp()]
        starts = starts[-(rule.restart_count + 5) :]
        state.data = {**state.data, "starts": starts, "last_key": str(key or "")}
        active = len(starts) >= rule.restart_count + 1  # the first start is not a restart
        detail = f"{len(starts) - 1} restarts in {rule.restart_window_seconds // 60} min"
        _advance(state, rule, active, container, None, float(len(starts) - 1), detail, now)
        state.save()


# --- The tick: lasting conditions and repeats ------------------------------------------


def tick(now=None):
    """Beat task: host reachability, `for` of lasting conditions, windows, repeats."""
    now = now or timezone.now()
    _hosts(now)
    lasting = AlertState.objects.filter(
        status__in=[S.PENDING, S.FIRING], rule__enabled=True
    ).select_related("rule", "container", "container__host", "host")
    for state in lasting:
        rule = state.rule
        try:
            if rule.event == Event.UNHEALTHY and state.container is not None:
                c = state.container
                active = c.removed_at is None and c.state == "running" and c.health == "unhealthy"
                step(rule, active=active, container=c, now=now)
            elif rule.event == Event.RESTART_LOOP and state.container is not None:
                horizon = now.timestamp() - rule.restart_window_seconds
                starts = [t for t in state.data.get("starts", []) if t > horizon]
                step(
                    rule,
                    active=len(starts) > rule.restart_count,
                    container=state.container,
                    now=now,
                )
            elif rule.event in INSTANT and state.status == S.FIRING and state.container:
                step(rule, active=True, container=state.container, now=now)  # repeats only
            elif not rule.event and state.status == S.FIRING and state.container:
                c = state.container
                if c.removed_at is not None or c.state != "running":
                    mute(AlertState.objects.filter(pk=state.pk), "container stopped", now)
        except Exception:
            log.exception("alert tick failed for rule %s", rule.name)
    # Rules switched off end their episodes quietly.
    mute(
        AlertState.objects.filter(rule__enabled=False, status__in=[S.PENDING, S.FIRING]),
        "rule disabled",
        now,
    )


def _hosts(now):
    rules = list(AlertRule.objects.filter(enabled=True, event=Event.HOST_UNREACHABLE))
    if not rules:
        return
    for host in Host.objects.prefetch_related("teams"):
        down = host.state == Host.State.UNREACHABLE
        for rule in rules:
            if not rule.matches_host(host):
                continue
            if (
                not down
                and not AlertState.objects.filter(rule=rule, subject=f"h{host.pk}").exists()
            ):
                continue  # nothing to end: do not make a row per healthy host
            detail = (host.last_error or "")[:500] if down else ""
            step(rule, active=down, host=host, detail=detail, now=now)


def since_text(dt):
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else ""


def window(seconds):
    return timedelta(seconds=seconds)
