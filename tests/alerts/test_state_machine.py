"""The state machine on captured Docker events (the watcher's dicts, as the engine sends
them): restart loops, health, replayed events, disabled rules."""

import time

import pytest

from alerts import evaluate
from alerts.models import Alert, AlertRule, AlertState, Event, Notification
from containers.models import Container


@pytest.fixture
def row(cast, local_host):
    return Container.objects.create(
        host=local_host, docker_id="c" * 64, name="web-1", state="running", team=cast.alpha
    )


def event(action, n, **attrs):
    """A Docker event as `client.api.events(decode=True)` yields it (engine 20.10)."""
    return {
        "status": action, "id": "c" * 64, "from": "busybox", "Type": "container",
        "Action": action, "Actor": {"ID": "c" * 64, "Attributes": {"name": "web-1", **attrs}},
        "scope": "local", "time": 1764300000 + n, "timeNano": 1764300000000000000 + n,
    }  # fmt: skip


def rule(team, ev, **extra):
    return AlertRule.objects.create(
        name=ev, team=team, event=ev, recipients=["ops@example.test"], **extra
    )


def test_restart_loop_fires_at_n_restarts_and_resolves_when_the_window_is_quiet(cast, row, no_kick):
    r = rule(cast.alpha, Event.RESTART_LOOP, restart_count=3, restart_window_seconds=60)
    for n in range(3):  # the first start and two restarts: not yet
        evaluate.on_container_event(row.host, row, event("start", n))
    assert not Alert.objects.exists()
    evaluate.on_container_event(row.host, row, event("start", 3))
    alert = Alert.objects.get(rule=r)
    assert alert.detail == "3 restarts in 1 min"
    evaluate.on_container_event(row.host, row, event("start", 3))  # replayed: ignored
    evaluate.on_container_event(row.host, row, event("start", 4))
    assert Alert.objects.count() == 1
    state = AlertState.objects.get(rule=r)
    state.data["starts"] = [t - 120 for t in state.data["starts"]]  # a quiet minute later
    state.save()
    evaluate.tick()
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None


def test_unhealthy_waits_for_its_for_then_fires_and_healthy_resolves(cast, row, no_kick):
    r = rule(cast.alpha, Event.UNHEALTHY, for_seconds=1)
    evaluate.on_container_event(row.host, row, event("health_status: unhealthy", 1))
    assert AlertState.objects.get(rule=r).status == "pending"
    row.health = "unhealthy"
    row.save()
    evaluate.tick()
    assert not Alert.objects.exists()
    time.sleep(1.1)
    evaluate.tick()
    assert AlertState.objects.get(rule=r).status == "firing"
    evaluate.tick()
    assert Alert.objects.count() == 1 and Notification.objects.count() == 1
    evaluate.on_container_event(row.host, row, event("health_status: healthy", 2))
    assert AlertState.objects.get(rule=r).status == "resolved"
    assert Notification.objects.filter(kind="resolved").count() == 1


def test_another_teams_rule_never_sees_the_container_and_exit_0_is_not_a_death(cast, row, no_kick):
    rule(cast.beta, Event.DIED_NONZERO)
    evaluate.on_container_event(row.host, row, event("die", 1, exitCode="1"))
    assert not Alert.objects.exists()
    mine = AlertRule.objects.create(
        name="mine", team=cast.alpha, event=Event.DIED_NONZERO, recipients=["a@example.test"]
    )
    evaluate.on_container_event(row.host, row, event("die", 2, exitCode="0"))
    assert not Alert.objects.exists()
    evaluate.on_container_event(row.host, row, event("die", 3, exitCode="2"))
    assert Alert.objects.get().rule == mine


def test_disabling_a_rule_ends_its_alert_quietly(cast, row, no_kick):
    from alerts import services
    from dashboard.audit import Actor

    r = rule(cast.alpha, Event.OOM)
    evaluate.on_container_event(row.host, row, event("oom", 1))
    assert Notification.objects.count() == 1
    services.set_enabled(Actor(cast.owner), r, False)
    alert = Alert.objects.get()
    assert alert.resolved_at is not None and alert.end_reason == "rule disabled"
    assert Notification.objects.count() == 1  # no resolution email for a switched-off rule
