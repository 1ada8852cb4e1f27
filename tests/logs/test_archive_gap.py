"""How much of a container's output can be missing when it is removed from outside
(`docker rm -f`): the periodic capture every LOG_ARCHIVE_EVERY seconds plus the
events watcher's capture on `die`. Measured, printed, and bounded."""

import random
import subprocess
import threading
import time
from datetime import datetime

import pytest
from django.conf import settings as django_settings
from django.db import connection

from containers.events import watch_host
from containers.services import sync_host
from logs import archive, tasks
from tests.logs.support import shell

pytestmark = [pytest.mark.live]
TRIALS = 4


def _epoch(rfc3339):
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def _beat(stop, every):
    try:
        while not stop.wait(every):
            tasks.capture_all_logs()
    finally:
        connection.close()


def _poke_events():
    labels = [
        "--label",
        "dockyard.test=1",
        "--label",
        f"dockyard.test-run={django_settings.RUN_ID}",
    ]
    made = subprocess.run(
        ["docker", "create", *labels, django_settings.TEST_IMAGE, "true"],
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(["docker", "rm", "-f", made.stdout.strip()], check=True, capture_output=True)


def test_missing_output_after_outside_removal_is_bounded(cast, make_container, local_host):
    every = django_settings.CELERY_BEAT_SCHEDULE["capture-logs"]["schedule"]  # 5 s by default
    gaps = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=watch_host, args=(local_host.pk, stop), daemon=True),
        threading.Thread(target=_beat, args=(stop, every), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        # The writers run side by side and are removed one after another at random
        # moments over more than one capture period, so the removals fall at
        # different phases of the beat (as separate trials would) in a third of the time.
        boxes = [
            make_container(
                cast.owner,
                cast.alpha,
                command=shell("i=0; while true; do i=$((i+1)); echo w-$i; usleep 10000; done"),
            )
            for _ in range(TRIALS)
        ]
        time.sleep(6)
        removed_at = {}
        for c in boxes:
            time.sleep(random.uniform(0.3, 2.5))
            removed_at[c.pk] = time.time()
            subprocess.run(["docker", "rm", "-f", c.docker_id], check=True, capture_output=True)
        time.sleep(1.5)  # the watcher handles its events
        sync_host(local_host)
        for c in boxes:
            lines = list(archive.archived_lines(c))
            assert lines, "nothing archived"
            numbers = [int(ln.text[2:]) for ln in lines]
            assert numbers == list(range(1, len(numbers) + 1))  # none lost, none twice
            gaps.append(removed_at[c.pk] - _epoch(lines[-1].time))
    finally:
        stop.set()
        _poke_events()  # the watcher sees `stop` at its next event
        for t in threads:
            t.join(10)
            assert not t.is_alive()
    print(f"\nmissing at removal: {', '.join(f'{g:.2f}' for g in gaps)} s (max {max(gaps):.2f})")
    assert max(gaps) <= every + 1.5
