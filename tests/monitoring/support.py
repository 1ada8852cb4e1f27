"""Helpers for the monitoring tests: the stats socket."""

import json
import time

from channels.testing import WebsocketCommunicator

from dashboard.asgi import application


def open_stats_socket(container, headers):
    return WebsocketCommunicator(
        application, f"/ws/containers/{container.pk}/stats/", headers=headers
    )


async def receive_points(comm, count, timeout=20):
    """`count` messages from the stats socket, as dicts; raises if the socket closes."""
    points, deadline = [], time.monotonic() + timeout
    while len(points) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"gave up after {timeout}s with {points}")
        out = await comm.receive_output(timeout=left)
        if out["type"] == "websocket.close":
            raise AssertionError(f"socket closed ({out.get('code')}) after {points}")
        points.append(json.loads(out["text"]))
    return points
