"""Outages under an open log socket: the engine restarts, or the socket reconnects.

Either way the log resumes from the time of the last line sent, and no line that
was delivered is delivered again.
"""

import asyncio
import time
from collections import Counter

import pytest
from asgiref.sync import async_to_sync

from dashboard.models import Host
from logs.consumers import parse_after
from logs.engine_stream import UNREACHABLE, Follower, open_client, read_lines, time_ns
from logs.render import Line
from tests.logs.support import headers_for, open_socket, parse

# A counter kept in the container's file system: the numbers go on after a restart,
# so every line the container ever writes is distinct.
COUNTER = (
    "trap 'exit 0' TERM; i=$(cat /n 2>/dev/null || echo 0); "
    "while true; do i=$((i+1)); echo $i > /n; echo tick-$i; sleep 0.2; done"
)


def ticks(lines):
    return [int(t.split("-")[1]) for s, t in lines if s == "stdout" and t.startswith("tick-")]


class Reader:
    """Everything a log socket receives: raw frames and the lines in them."""

    def __init__(self, comm):
        self.comm, self.frames, self.lines = comm, [], []

    async def until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not within {timeout}s: {what}; last: {self.frames[-4:]}")
            # receive_output's timeout would cancel the consumer: wait without it.
            if await self.comm.receive_nothing(timeout=min(left, 0.2)):
                continue
            self.take(await self.comm.receive_output(timeout=5))

    def take(self, out):
        assert out["type"] != "websocket.close", out
        self.frames.append(out.get("text", ""))
        self.lines.extend(parse(out.get("text", "")))

    async def drain(self, quiet=0.5):
        """What else arrives until nothing has for `quiet` seconds."""
        while not await self.comm.receive_nothing(timeout=quiet):
            self.take(await self.comm.receive_output(timeout=5))

    def said(self, text):
        return any('id="log-status"' in f and text in f for f in self.frames)


@pytest.mark.live
@pytest.mark.two_hosts
def test_engine_restart_under_an_open_log_socket(cast, second_host, second_engine, make_container):
    Host.objects.filter(pk=second_host.pk).update(all_teams=True)
    c = make_container(cast.owner, cast.alpha, host=second_host, command=["sh", "-c", COUNTER])
    headers = headers_for(cast.viewer)

    async def run():
        comm = open_socket(c, headers, "tail=all&ts=0")
        connected, code = await comm.connect(timeout=5)
        assert connected, code
        reader = Reader(comm)
        try:
            await reader.until(lambda r: len(ticks(r.lines)) >= 5, 20, "first lines")
            await asyncio.to_thread(second_engine.stop)
            await reader.until(lambda r: r.said(UNREACHABLE), 30, "the unreachable status")
            before = max(ticks(reader.lines))

            await asyncio.to_thread(second_engine.start, image=False)
            await asyncio.to_thread(second_engine.docker, "start", c.docker_id)
            await reader.until(
                lambda r: max(ticks(r.lines)) >= before + 5, 60, "new lines after the restart"
            )
            return reader
        finally:
            await comm.disconnect()

    reader = async_to_sync(run)()
    numbers = ticks(reader.lines)
    twice = [n for n, k in Counter(numbers).items() if k > 1]
    assert not twice, f"delivered twice: {twice}"
    assert numbers == sorted(numbers)
    # The status line went back to empty (live) once the log resumed.
    last_status = [f for f in reader.frames if 'id="log-status"' in f][-1]
    assert 'class="log-status"' in last_status, last_status


def test_follower_drops_lines_at_or_before_after():
    stamp = "2026-11-28T12:00:00.%sZ"
    base = time_ns(stamp % "5")
    assert base == time_ns("2026-11-28T12:00:00Z") + 500_000_000
    assert time_ns(stamp % "500000001") == base + 1
    assert time_ns("junk") is None and time_ns("") is None
    f = Follower(None, "x" * 64, tail="all", since=None, keep=None, timestamps=False)
    f.after_ns = f.resume_ns = base
    for frac, text in [("4", "old"), ("5", "same"), ("500000001", "new"), ("6", "newer")]:
        f._put(Line("stdout", stamp % frac, text))
    f._put(Line("stderr", stamp % "55", "other stream"))  # out of order, after the resume
    f._put(Line("stderr", stamp % "45", "replayed"))  # before the resume point: dropped
    lines, _ = f.take(10)
    assert [parse(h)[0][1] for h in lines] == ["new", "newer", "other stream"]
    assert f.after_ns == time_ns(stamp % "6")  # where the next stream resumes


def test_after_parameter_is_digits_or_nothing():
    assert parse_after({"after": ["1764331200123456789"]}) == 1764331200123456789
    assert parse_after({"after": ["-5"]}) is None
    assert parse_after({"after": ["1e9"]}) is None
    assert parse_after({"after": ["9" * 21]}) is None
    assert parse_after({}) is None


@pytest.mark.live
def test_reconnecting_socket_resumes_after_the_last_line_it_had(cast, make_container):
    """What the page does when htmx reconnects: `after=` the ns of #log-after."""
    c = make_container(
        cast.owner,
        cast.alpha,
        command=["sh", "-c", "trap 'exit 0' TERM; seq 1 50; while true; do sleep 1; done"],
    )
    client = open_client(c.host)
    try:
        deadline = time.monotonic() + 10
        while len(logged := list(read_lines(client, c.docker_id))) < 50:
            assert time.monotonic() < deadline, logged
            time.sleep(0.2)
    finally:
        client.close()
    headers = headers_for(cast.viewer)

    async def watch(query, count):
        comm = open_socket(c, headers, query)
        connected, code = await comm.connect(timeout=5)
        assert connected, code
        reader = Reader(comm)
        try:
            await reader.until(lambda r: len(r.lines) >= count, 20, f"{count} lines")
            await reader.drain()  # nothing more may come
            return reader
        finally:
            await comm.disconnect()

    # The first connection: all 50; the page is told the time of the last one.
    first = async_to_sync(watch)("tail=all&ts=0", 50)
    assert [t for _, t in first.lines] == [str(i) for i in range(1, 51)]
    markers = [f for f in first.frames if 'id="log-after"' in f]
    assert f'data-after="{time_ns(logged[-1].time)}"' in markers[-1]

    # The socket reconnects having had line 20: lines 21.. only, once each.
    after = time_ns(logged[19].time)
    second = async_to_sync(watch)(f"tail=100&ts=0&after={after}", 30)
    assert [t for _, t in second.lines] == [str(i) for i in range(21, 51)]
