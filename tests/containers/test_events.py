"""The events watcher keeps the mirror true when containers change outside the dashboard."""

import threading
import time

import pytest
from django.conf import settings

from containers import events
from containers.models import Container
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique

pytestmark = [pytest.mark.live]


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def watcher(local_host, monkeypatch):
    # Short streams so the thread notices `stop` quickly at the end of the test.
    monkeypatch.setattr(events, "STREAM_SECONDS", 2)
    stop = threading.Event()
    thread = threading.Thread(target=events.watch_host, args=(local_host.pk, stop), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def state_of(docker_id):
    row = Container.objects.filter(docker_id=docker_id).first()
    return row and (row.state, row.removed_at is not None)


def test_cli_created_stopped_and_removed_containers_are_mirrored(watcher, engine_cleanup):
    client = engine_cleanup
    time.sleep(0.5)  # let the watcher open its stream
    c = client.containers.run(
        settings.TEST_IMAGE,
        ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        name=unique("ev"),
        labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID},
        detach=True,
    )
    assert wait_for(lambda: state_of(c.id) == ("running", False)), state_of(c.id)
    row = Container.objects.get(docker_id=c.id)
    assert row.team is None and row.owner is None  # unowned until an admin assigns it

    c.stop(timeout=5)
    assert wait_for(lambda: state_of(c.id) == ("exited", False)), state_of(c.id)
    assert Container.objects.get(docker_id=c.id).exit_code == 0

    c.remove()
    assert wait_for(lambda: state_of(c.id) == ("removed", True)), state_of(c.id)


def test_events_missed_between_streams_are_replayed(local_host, engine_cleanup, monkeypatch):
    # A container dies while no stream is open (between two streams, or during a short
    # outage); the next stream starts where the last one stopped, so the watcher still
    # hears the `die` — alert rules depend on it, a resync alone would not say it died.
    from containers.signals import container_event

    client = engine_cleanup
    c = client.containers.run(
        settings.TEST_IMAGE,
        ["sh", "-c", "sleep 30"],
        name=unique("gap"),
        labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID},
        detach=True,
    )
    from containers.services import sync_host

    sync_host(local_host)  # the dashboard knows it before it dies
    last_stream_ended = time.time()
    c.kill()
    heard = []

    def listen(sender, host, container, event, **kwargs):
        if event.get("id") == c.id:
            heard.append(event.get("Action"))

    container_event.connect(listen)
    monkeypatch.setattr(events, "STREAM_SECONDS", 2)
    stop = threading.Event()
    thread = threading.Thread(
        target=events.watch_host, args=(local_host.pk, stop, last_stream_ended), daemon=True
    )
    thread.start()
    try:
        assert wait_for(lambda: "die" in heard), heard
    finally:
        stop.set()
        thread.join(timeout=10)
        container_event.disconnect(listen)
    assert not thread.is_alive()
