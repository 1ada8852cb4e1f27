"""The log socket through the real ASGI stack, on a real container's log."""

import pytest
from asgiref.sync import async_to_sync

from logs.render import CUT_MARKER, MAX_LINE_BYTES
from tests.logs.support import headers_for, open_socket, read_lines, shell

pytestmark = [pytest.mark.live]


def texts(lines, stream=None):
    return [t for s, t in lines if stream is None or s == stream]


def watch(container, user, query, until, timeout=20):
    headers = headers_for(user)

    async def run():
        comm = open_socket(container, headers, query)
        connected, code = await comm.connect(timeout=5)
        assert connected, code
        try:
            return await read_lines(comm, until, timeout)
        finally:
            await comm.disconnect()

    return async_to_sync(run)()


def test_known_lines_arrive_in_order_with_streams_apart(cast, make_container):
    c = make_container(
        cast.owner,
        cast.alpha,
        command=shell("for i in $(seq 1 300); do echo out-$i; echo err-$i >&2; done"),
    )
    lines = watch(c, cast.viewer, "tail=all&ts=0", lambda ls: len(ls) >= 600)
    assert texts(lines, "stdout") == [f"out-{i}" for i in range(1, 301)]
    assert texts(lines, "stderr") == [f"err-{i}" for i in range(1, 301)]


def test_tail_gives_the_last_lines_then_follows(cast, make_container):
    c = make_container(
        cast.owner,
        cast.alpha,
        command=shell("seq 1 250; sleep 2; echo later"),
    )
    # The 250 lines are out before the socket opens.
    watch(c, cast.viewer, "tail=all&ts=0", lambda ls: "250" in texts(ls))
    lines = watch(c, cast.viewer, "tail=100&ts=0", lambda ls: "later" in texts(ls))
    assert texts(lines) == [str(i) for i in range(151, 251)] + ["later"]


def test_filter_text_and_regex_on_the_server(cast, make_container):
    c = make_container(
        cast.owner, cast.alpha, command=shell("for i in $(seq 1 40); do echo n-$i; done; echo END")
    )
    lines = watch(
        c, cast.viewer, "tail=all&ts=0&q=n-1", lambda ls: "n-1" in texts(ls) and len(ls) >= 11
    )
    assert texts(lines) == ["n-1"] + [f"n-{i}" for i in range(10, 20)]
    lines = watch(
        c, cast.viewer, "tail=all&ts=0&re=1&q=%5En-%5B23%5D%24%7CEND", lambda ls: "END" in texts(ls)
    )
    assert texts(lines) == ["n-2", "n-3", "END"]


def test_timestamps_are_shown_on_request(cast, make_container):
    c = make_container(cast.owner, cast.alpha, command=shell("echo stamped"))
    lines = watch(c, cast.viewer, "tail=all&ts=1", lambda ls: len(ls) >= 1)
    assert lines[0][1].endswith(" stamped") and lines[0][1][:2] == "20"


def test_huge_line_is_cut_bad_utf8_replaced_and_the_stream_lives_on(cast, make_container):
    script = (
        "head -c 2097152 /dev/zero | tr '\\000' x; echo; printf 'bad \\377\\376 end\\n'; "
        "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"
    )
    c = make_container(
        cast.owner, cast.alpha, command=["sh", "-c", f"trap 'exit 0' TERM; {script}"]
    )
    lines = watch(c, cast.viewer, "tail=all&ts=0", lambda ls: "tick-8" in texts(ls), timeout=30)
    big = lines[0][1]
    assert big == "x" * MAX_LINE_BYTES + CUT_MARKER
    assert lines[1][1] == "bad \ufffd\ufffd end"
    assert texts(lines)[2:10] == [f"tick-{i}" for i in range(1, 9)]
