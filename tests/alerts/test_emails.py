"""Alert emails through a real SMTP server: one per firing and resolution, none while
silenced, batching, rate limits, SMTP outages and refusals; each delivered once."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import evaluate, outbox, services
from alerts.models import Alert, AlertState, Notification
from dashboard.audit import Actor

from .conftest import metric_rule, sweep

pytestmark = [pytest.mark.live]


def text_of(msg):
    return msg.get_body(("plain",)).get_content()


def html_of(msg):
    return msg.get_body(("html",)).get_content()


def test_rule_that_fires_sends_one_email_and_one_for_its_resolution(
    cast, make_container, smtp, no_kick
):
    c = make_container(owner=cast.owner, team=cast.alpha)
    rule = metric_rule(cast.alpha)

    sweep(c, cpu_percent=93.5)
    state = AlertState.objects.get(rule=rule, container=c)
    assert state.status == "firing"
    assert outbox.deliver_due() == 1
    sweep(c, cpu_percent=95)  # still firing: no second email
    assert outbox.deliver_due() == 0
    assert len(smtp.messages) == 1

    msg = smtp.messages[0]["msg"]
    assert smtp.messages[0]["to"] == ["ops@example.test"]
    assert "FIRING" in msg["Subject"] and c.name in msg["Subject"] and "local" in msg["Subject"]
    body = text_of(msg)
    alert = Alert.objects.get(rule=rule)
    for fact in (c.name, "local", "93.5", "threshold 50", f"/containers/{c.pk}/", "UTC"):
        assert fact in body, fact
    assert body.count("https://dockyard.example.test/containers/") == 1
    assert msg["Message-ID"] == Notification.objects.get(kind="firing").message_id
    assert alert.since.strftime("%Y-%m-%d %H:%M") in body

    sweep(c, cpu_percent=2)
    assert AlertState.objects.get(pk=state.pk).status == "resolved"
    assert outbox.deliver_due() == 1
    sweep(c, cpu_percent=1)
    assert outbox.deliver_due() == 0
    assert len(smtp.messages) == 2
    resolved = smtp.messages[1]["msg"]
    assert "RESOLVED" in resolved["Subject"] and c.name in resolved["Subject"]
    assert resolved["Message-ID"] != msg["Message-ID"]
    statuses = set(Notification.objects.values_list("status", flat=True))
    assert statuses == {"sent"}


def test_no_resolution_email_unless_asked_and_a_stopped_container_mutes_its_rule(
    cast, make_container, smtp, no_kick
):
    c = make_container(owner=cast.owner, team=cast.alpha)
    rule = metric_rule(cast.alpha, send_resolved=False)
    sweep(c, cpu_percent=99)
    sweep(c, cpu_percent=1)
    assert outbox.deliver_due() == 1
    assert [m["msg"]["Subject"].strip()[:18] for m in smtp.messages] == ["[Dockyard] FIRING:"]

    sweep(c, cpu_percent=99)  # fires again: a new episode, a new email
    c.state = "exited"
    c.save()
    # The next sweep has no sample of it: its rule is muted, quietly.
    evaluate.on_sweep(c.host_id, timezone.now(), [])
    state = AlertState.objects.get(rule=rule, container=c)
    assert state.status == "resolved"
    assert Alert.objects.filter(rule=rule).first().end_reason == "container stopped"
    assert outbox.deliver_due() == 1
    assert len(smtp.messages) == 2  # the second firing; no resolution


def test_silenced_alert_sends_nothing_and_an_expired_silence_lets_the_next_one_through(
    cast, make_container, smtp, no_kick
):
    c = make_container(owner=cast.owner, team=cast.alpha)
    rule = metric_rule(cast.alpha)
    silence = services.create_silence(
        Actor(cast.owner), cast.alpha, timezone.now() + timedelta(hours=1), "deploying", rule=rule
    )
    sweep(c, cpu_percent=99)
    sweep(c, cpu_percent=1)
    assert Alert.objects.get(rule=rule).silenced
    assert not Notification.objects.exists()
    assert outbox.deliver_due() == 0
    assert smtp.messages == []

    services.expire_silence(Actor(cast.owner), silence)
    sweep(c, cpu_percent=99)
    assert outbox.deliver_due() == 1
    assert len(smtp.messages) == 1


def test_for_duration_waits_and_the_state_survives_a_restart(cast, make_container, smtp, no_kick):
    c = make_container(owner=cast.owner, team=cast.alpha)
    rule = metric_rule(cast.alpha, for_seconds=1)
    sweep(c, cpu_percent=99)
    state = AlertState.objects.get(rule=rule, container=c)
    assert state.status == "pending" and not Alert.objects.exists()
    since = state.since
    sweep(c, cpu_percent=99)  # a "new worker": it reads the pending state, not memory
    assert AlertState.objects.get(pk=state.pk).since == since
    time.sleep(1.1)
    sweep(c, cpu_percent=99)
    assert AlertState.objects.get(pk=state.pk).status == "firing"
    for _ in range(3):  # any number of sweeps, ticks and deliveries later: one email
        sweep(c, cpu_percent=99)
        evaluate.tick()
        outbox.deliver_due()
    assert len(smtp.messages) == 1
    assert Alert.objects.count() == 1


def test_emails_to_one_recipient_within_the_window_go_as_one(
    cast, make_container, smtp, settings, no_kick
):
    settings.ALERT_EMAIL_BATCH_SECONDS = 5
    a = make_container(owner=cast.owner, team=cast.alpha)
    b = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha)
    sweep(a, cpu_percent=99)
    sweep(b, cpu_percent=99)
    assert outbox.deliver_due() == 0  # still in the batching window
    assert outbox.deliver_due(now=timezone.now() + timedelta(seconds=6)) == 1
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]["msg"]
    assert "and 1 more" in msg["Subject"]
    assert a.name in text_of(msg) and b.name in text_of(msg)
    ids = set(Notification.objects.values_list("message_id", flat=True))
    assert ids == {msg["Message-ID"]}


def test_rate_limit_delays_and_batches_but_drops_nothing(
    cast, make_container, smtp, settings, no_kick
):
    settings.ALERT_EMAIL_RATE_PER_HOUR = 1
    a = make_container(owner=cast.owner, team=cast.alpha)
    b = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha)
    sweep(a, cpu_percent=99)
    assert outbox.deliver_due() == 1
    sweep(b, cpu_percent=99)
    assert outbox.deliver_due() == 0  # over the limit: waits
    waiting = Notification.objects.get(status="pending")
    assert waiting.next_attempt_at > timezone.now() + timedelta(minutes=55)
    assert outbox.deliver_due(now=timezone.now() + timedelta(hours=1, seconds=5)) == 1
    assert len(smtp.messages) == 2


def _fire_for(cast, make_container, recipients):
    c = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha, recipients=recipients)
    sweep(c, cpu_percent=99)
    return c


def test_smtp_down_for_a_while_then_up_every_email_arrives_exactly_once(
    cast, make_container, smtp, no_kick
):
    recipients = ["a@example.test", "b@example.test", "c@example.test"]
    smtp.stop()
    _fire_for(cast, make_container, recipients)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # the worker keeps trying while the server is down
        assert outbox.deliver_due() == 0
        time.sleep(0.1)
    rows = list(Notification.objects.all())
    assert {r.status for r in rows} == {"pending"}
    assert all(r.attempts >= 2 for r in rows), [r.attempts for r in rows]
    assert "refused" in rows[0].last_error.lower()

    smtp.start()
    deadline = time.monotonic() + 10
    while Notification.objects.exclude(status="sent").exists() and time.monotonic() < deadline:
        outbox.deliver_due()
        time.sleep(0.1)
    for _ in range(3):
        outbox.deliver_due()
    assert sorted(m["to"][0] for m in smtp.messages) == recipients
    ids = [m["msg"]["Message-ID"] for m in smtp.messages]
    assert len(set(ids)) == 3


def test_4xx_is_retried_and_5xx_is_permanent(cast, make_container, smtp, no_kick):
    _fire_for(cast, make_container, ["temp@example.test"])
    smtp.handler.mode = "tempfail"
    outbox.deliver_due()
    row = Notification.objects.get()
    assert row.status == "pending" and row.last_error.startswith("451")
    smtp.handler.mode = "ok"
    time.sleep(0.3)
    assert outbox.deliver_due() == 1
    assert Notification.objects.get().status == "sent"

    Notification.objects.all().delete()
    _fire_for_again = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha, name="perm", recipients=["gone@example.test"])
    smtp.handler.mode = "permfail"
    sweep(_fire_for_again, cpu_percent=99)
    outbox.deliver_due()
    row = Notification.objects.get(recipient="gone@example.test")
    assert row.status == "failed" and "550" in row.last_error
    smtp.handler.mode = "ok"
    time.sleep(0.3)
    outbox.deliver_due()
    assert Notification.objects.get(pk=row.pk).status == "failed"
    assert smtp.to("gone@example.test") == []


def test_html_in_a_container_name_is_escaped_and_credentials_masked_in_the_email(
    cast, make_container, smtp, no_kick, login
):
    c = make_container(owner=cast.owner, team=cast.alpha)
    # The mirror holds whatever an engine reports; a hostile engine can report anything.
    c.name = "<img src=x onerror=alert(1)>-redis://u:hunter2@db"
    c.save()
    metric_rule(cast.alpha)
    sweep(c, cpu_percent=99)
    assert outbox.deliver_due() == 1
    msg = smtp.messages[0]["msg"]
    html, text = html_of(msg), text_of(msg)
    assert "<img" not in html and "&lt;img src=x" in html
    assert "hunter2" not in html and "hunter2" not in text and "hunter2" not in msg["Subject"]
    assert "\n" not in msg["Subject"]

    for path in ("/monitoring/", "/monitoring/alerts/"):
        page = login(cast.viewer).get(path).content.decode()
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_celery_worker_sends_what_the_state_change_queued(
    cast, make_container, smtp, celery_worker
):
    """No test plays the worker here: the commit kicks the task, the real worker sends."""
    c = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha, recipients=["worker@example.test"])
    sweep(c, cpu_percent=99)
    deadline = time.monotonic() + 20
    while not smtp.to("worker@example.test") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.to("worker@example.test")) == 1
    assert Notification.objects.get().status == "sent"


def test_the_real_collector_fires_a_cpu_rule_and_a_stopped_container_mutes_it(
    cast, make_container, smtp, no_kick, docker_client
):
    """No sample inserted by hand: the monitoring app's collector reads the cgroup of a
    container burning CPU, stores its samples and announces the sweep."""
    from monitoring import collector

    collector.forget()
    try:
        hot = make_container(
            owner=cast.owner, team=cast.alpha, command=["sh", "-c", "while :; do :; done"]
        )
        rule = metric_rule(cast.alpha, threshold=20, window_seconds=30)
        collector.sweep_host(hot.host, store=False)  # rates need a first reading
        time.sleep(1.5)
        collector.sweep_host(hot.host)
        state = AlertState.objects.get(rule=rule, container=hot)
        assert state.status == "firing" and state.value > 20, state.value
        assert outbox.deliver_due() == 1
        assert f"Value:     {Alert.objects.get().value:.4g}" in text_of(smtp.messages[0]["msg"])

        docker_client.api.kill(hot.docker_id)
        from containers.services import sync_host

        sync_host(hot.host)
        collector.sweep_host(hot.host)
        assert AlertState.objects.get(pk=state.pk).status == "resolved"
        assert Alert.objects.get().end_reason == "container stopped"
        assert outbox.deliver_due() == 0  # muted: no resolution email
    finally:
        collector.forget()
