"""A viewer that falls behind: lines are dropped and counted, the queue stays bounded."""

import time

import pytest

from logs.consumers import FRAME_LINES
from logs.engine_stream import Follower
from tests.logs.support import shell

pytestmark = [pytest.mark.live]


def test_full_queue_drops_and_counts_skipped_lines(cast, make_container):
    c = make_container(cast.owner, cast.alpha, command=shell("seq 1 20000; echo DONE"))
    follower = Follower(
        c.host, c.docker_id, "all", None, keep=None, timestamps=False, queue_size=100
    )
    follower.start()
    try:
        deadline = time.monotonic() + 20
        while not _dropped(follower) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.queue.qsize() <= 100
        lines, skipped = follower.take(FRAME_LINES)
        assert len(lines) == 100 and lines[0] == '<div class="l stdout">1</div>'
        assert skipped == 20001 - 100  # everything after the first 100, counted
        assert follower.thread.is_alive()  # the stream goes on after the drop
    finally:
        follower.stop()
    follower.thread.join(5)
    assert not follower.thread.is_alive()


def _dropped(follower):
    with follower.lock:
        return follower.skipped >= 20001 - 100
