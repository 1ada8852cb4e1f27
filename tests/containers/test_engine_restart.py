"""An engine restarted under the dashboard: the events watcher catches up by itself.

While the watcher is cut off, what happens on the engine reaches it by no event;
on reconnecting it lists the engine again, so the mirror never keeps a state the
engine no longer has (a container stopped meanwhile shows as exited).
"""

import threading
import time

import pytest

from containers import events
from containers.models import Container
from dashboard.models import Host

pytestmark = [pytest.mark.live, pytest.mark.two_hosts]


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_watcher_resyncs_after_the_engine_restarts(
    cast, second_host, second_engine, make_container
):
    Host.objects.filter(pk=second_host.pk).update(all_teams=True)
    row = make_container(owner=cast.owner, team=cast.alpha, host=second_host)
    stop = threading.Event()
    watcher = threading.Thread(target=events.watch_host, args=(second_host.pk, stop), daemon=True)
    watcher.start()
    try:
        second_engine.stop()  # the engine stops its containers on the way down
        wait_for(
            lambda: Host.objects.get(pk=second_host.pk).state == Host.State.UNREACHABLE,
            30,
            "the watcher marks the host unreachable",
        )
        # Whatever events arrived before the stream broke, the mirror now says running:
        # only a resync on reconnect can put it right.
        Container.objects.filter(pk=row.pk).update(state="running")

        second_engine.start()

        wait_for(
            lambda: Container.objects.get(pk=row.pk).state == "exited",
            60,
            "the mirror shows the container exited after the engine came back",
        )
        assert Host.objects.get(pk=second_host.pk).state == Host.State.REACHABLE
    finally:
        stop.set()
        if second_engine.running():  # an event wakes the stream, and the watcher sees `stop`
            second_engine.docker("run", "--rm", "dockyard-test/busybox:latest", "true")
        watcher.join(timeout=30)
