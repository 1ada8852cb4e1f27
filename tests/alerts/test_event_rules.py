"""Event rules through the real events watcher: a container that exits non-zero and one
that is OOM-killed each give their email; a restart makes a death resolve."""

import threading

import pytest

from alerts import evaluate, outbox
from alerts.models import Alert, AlertRule, AlertState, Event
from containers import events
from dashboard.models import Host

from .conftest import wait_for

pytestmark = [pytest.mark.live]

# Sleep first: the mirror (and its team) must know the container before it dies.
DIES = ["sh", "-c", "sleep 3; exit 3"]
OOM = ["sh", "-c", 'sleep 3; a=$(head -c 60000000 /dev/zero | tr "\\0" x); sleep 5']


@pytest.fixture
def watcher(local_host, monkeypatch):
    # Streams long enough to see both containers die in one (the watcher resyncs between
    # streams; an event in that gap is not seen), short enough to stop soon after.
    monkeypatch.setattr(events, "STREAM_SECONDS", 10)
    stop = threading.Event()
    thread = threading.Thread(target=events.watch_host, args=(local_host.pk, stop), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()


def event_rule(team, event, **extra):
    return AlertRule.objects.create(
        name=f"{team.name}-{event}",
        team=team,
        event=event,
        recipients=["ops@example.test"],
        **extra,
    )


def test_exit_nonzero_and_oom_kill_each_send_their_email(
    cast, make_container, smtp, no_kick, watcher, docker_client
):
    died = event_rule(cast.alpha, Event.DIED_NONZERO)
    oom = event_rule(cast.alpha, Event.OOM)
    event_rule(cast.beta, Event.DIED_NONZERO)  # another team's rule: never about alpha's
    quitter = make_container(owner=cast.owner, team=cast.alpha, command=DIES)
    hog = make_container(
        owner=cast.owner, team=cast.alpha, command=OOM, mem_limit="16m", memswap_limit="16m"
    )
    wait_for(lambda: Alert.objects.filter(rule=died, container=quitter).exists(), 30, "died")
    wait_for(lambda: Alert.objects.filter(rule=oom, container=hog).exists(), 30, "oom")
    wait_for(lambda: Alert.objects.filter(rule=died, container=hog).exists(), 30, "oom's exit")
    assert docker_client.api.inspect_container(hog.docker_id)["State"]["OOMKilled"]
    assert Alert.objects.get(rule=died, container=quitter).detail == "exit code 3"
    assert Alert.objects.count() == 3

    while outbox.deliver_due():
        pass
    mails = smtp.to("ops@example.test")
    subjects = " | ".join(m["Subject"] for m in mails)
    assert "FIRING" in subjects and (quitter.name in subjects or hog.name in subjects), subjects
    bodies = "\n".join(m.get_body(("plain",)).get_content() for m in mails)
    assert "exit code 3" in bodies and "killed: out of memory" in bodies
    assert "exit code 137" in bodies
    # Each alert told once, however the three were batched into emails.
    assert bodies.count(f"Container: {quitter.name}") == 1
    assert bodies.count(f"Container: {hog.name}") == 2

    # Started again: the death is over; the resolution is told.
    docker_client.api.start(quitter.docker_id)
    wait_for(
        lambda: AlertState.objects.get(rule=died, container=quitter).status == "resolved",
        20,
        "resolved on start",
    )
    while outbox.deliver_due():
        pass
    assert any("RESOLVED" in m["Subject"] for m in smtp.to("ops@example.test"))


def test_host_unreachable_fires_after_its_for_and_resolves(cast, smtp, no_kick, db):
    host = Host.objects.create(name="gone", url="unix:///tmp/no-such-docker.sock", all_teams=True)
    rule = event_rule(cast.alpha, Event.HOST_UNREACHABLE, for_seconds=0)
    from dashboard.engine import EngineError, probe

    with pytest.raises(EngineError):
        probe(host)  # how the dashboard notices: the ping fails, the host is marked
    evaluate.tick()
    alert = Alert.objects.get(rule=rule)
    assert alert.host == host and alert.container is None
    assert "unreachable" in alert.detail or "not found" in alert.detail
    evaluate.tick()
    assert Alert.objects.count() == 1
    assert outbox.deliver_due() == 1
    Host.objects.filter(pk=host.pk).update(state=Host.State.REACHABLE)
    evaluate.tick()
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None
    while outbox.deliver_due():
        pass
    subjects = [m["Subject"] for m in smtp.to("ops@example.test")]
    assert len(subjects) == 2 and "host gone" in subjects[0]
