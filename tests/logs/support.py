"""Helpers for the logs tests: a log socket, its lines as (stream, text)."""

import html
import re
import time

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from dashboard.asgi import application
from tests.dashboard.test_job_websocket import ORIGIN, session_cookie

__all__ = ["ORIGIN", "session_cookie", "read_lines", "open_socket", "shell", "headers_for"]

LINE = re.compile(r'<div class="l (\w+)">(.*?)</div>', re.S)
TAG = re.compile(r"<[^>]+>")


def shell(script):
    """A container command: `script`, then idle until SIGTERM."""
    return ["sh", "-c", f"trap 'exit 0' TERM; {script}; while true; do sleep 1; done"]


def parse(fragment):
    return [(kind, html.unescape(TAG.sub("", body))) for kind, body in LINE.findall(fragment)]


def headers_for(user, origin=ORIGIN):
    """Call outside the event loop (it logs in through the database)."""
    headers = [session_cookie(user)] if user is not None else []
    if origin is not None:
        headers.append(origin)
    return headers


def open_socket(container, headers, query="ts=0"):
    return WebsocketCommunicator(
        application, f"/ws/containers/{container.pk}/logs/?{query}", headers=headers
    )


async def read_lines(comm, until, timeout=20):
    """Lines received until `until(lines)` is true; raises if it never is."""
    lines, deadline = [], time.monotonic() + timeout
    while not until(lines):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"gave up after {timeout}s; last lines: {lines[-5:]}")
        try:
            out = await comm.receive_output(timeout=left)
        except TimeoutError:
            continue
        if out["type"] == "websocket.close":
            raise AssertionError(f"socket closed ({out.get('code')}); lines: {lines[-5:]}")
        lines.extend(parse(out.get("text", "")))
    return lines


def connect(container, headers):
    """(accepted, close code) of the logs socket for these headers; closed at once."""

    async def attempt():
        comm = open_socket(container, headers, "tail=all&ts=0")
        connected, code = await comm.connect(timeout=5)
        await comm.disconnect()
        return connected, code

    return async_to_sync(attempt)()
