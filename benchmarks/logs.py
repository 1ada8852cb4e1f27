"""Live logs: latency from a line's arrival at the engine to the websocket, and memory
under a 5000 lines/s writer.

Runs the real ASGI application in this process (daphne is not needed to measure the
consumer) against the real engine and Redis, with a throw-away SQLite database:

    REDIS_URL=redis://127.0.0.1:6390/0 .venv/bin/python benchmarks/logs.py

1. Latency: a container prints 1500 lines, 5 ms apart; each line's engine timestamp
   (`timestamps=1`, the time dockerd read it) is compared with the time its frame
   reached the websocket client. p50 and p99 over all lines.
2. Memory: a container writes 5000 lines/s for 30 s (bursts of 60
   lines, then 10 ms asleep; the rate reached is printed) while
   a client reads the socket. This process's RSS (the server side: consumer, reader
   thread, channel layer) before the socket opens, its peak while the writer runs
   (sampled each second) and 2 s after it stopped; growth = peak - before.

The last line is `log latency p50=<ms> ms p99=<ms> ms; 5000 lines/s rss growth=<MB> MB`.
"""

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings_test")
os.environ.setdefault("DASHBOARD_GENERATE_KEYS", "true")
TMP = tempfile.mkdtemp(prefix="dockyard-bench-logs-")
os.environ["DATABASE_URL"] = f"sqlite:///{TMP}/db.sqlite3"

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

LABEL = "dockyard.bench.logs"
TS = re.compile(r'<span class="ts">([^<]+)</span> (\S+)')


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def epoch_ms(stamp):  # "2026-11-28T12:00:00.123" (UTC, ms)
    return datetime.fromisoformat(stamp + "+00:00").timestamp() * 1000


def setup_world(docker_id):
    from containers.models import Container
    from containers.services import sync_host
    from dashboard.models import Host, Membership, Role, Team

    host, _ = Host.objects.get_or_create(
        name="local", defaults={"url": "unix:///var/run/docker.sock", "all_teams": True}
    )
    sync_host(host)
    team, _ = Team.objects.get_or_create(name="bench")
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    Membership.objects.get_or_create(user=user, team=team, defaults={"role": Role.VIEWER})
    row = Container.objects.get(host=host, docker_id=docker_id)
    row.team = team
    row.save()
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return row.pk, [(b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode())]


def create(engine, script):
    return engine.containers.create(
        settings.TEST_IMAGE,
        ["sh", "-c", f"trap 'exit 0' TERM; {script}"],
        labels={LABEL: uuid.uuid4().hex[:8]},
    )


async def connect(pk, headers, query):
    from dashboard.asgi import application

    comm = WebsocketCommunicator(application, f"/ws/containers/{pk}/logs/?{query}", headers=headers)
    ok, code = await comm.connect(timeout=10)
    assert ok, code
    return comm


async def latency(comm, count):
    delays, seen = [], 0
    while seen < count:
        text = await comm.receive_from(timeout=30)
        now = time.time() * 1000
        for stamp, body in TS.findall(text):
            if body.startswith("lat-"):
                delays.append(now - epoch_ms(stamp))
                seen += 1
    await comm.disconnect()
    return sorted(delays)


async def memory(comm, seconds, before):
    """Read the fast writer for `seconds`; RSS is sampled about once a second."""
    lines = skipped = 0
    started = time.monotonic()
    peak, next_sample = before, started
    while time.monotonic() - started < seconds:
        text = await comm.receive_from(timeout=20)  # a timeout ends the application
        lines += text.count('<div class="l stdout">')
        for n in re.findall(r"(\d+) lines skipped", text):
            skipped += int(n)
        if time.monotonic() >= next_sample:
            peak, next_sample = max(peak, rss_mb()), next_sample + 1
    await comm.disconnect()
    return lines, skipped, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1500)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    engine = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    made = []
    try:
        c = create(engine, "i=0; while true; do i=$((i+1)); echo lat-$i; usleep 5000; done")
        made.append(c)
        w = create(engine, "while true; do seq 1 60; usleep 10000; done")
        made.append(w)
        lat_world, mem_world = setup_world(c.id), setup_world(w.id)

        async def both():
            # One event loop for both phases: the channel layer's Redis connections
            # belong to the loop that made them.
            lat_sock = await connect(*lat_world, "tail=100&ts=1")
            c.start()
            delays = await latency(lat_sock, args.lines)
            c.stop(timeout=1)
            before = rss_mb()
            mem_sock = await connect(*mem_world, "tail=100&ts=0")
            w.start()
            lines, skipped, peak = await memory(mem_sock, args.seconds, before)
            w.stop(timeout=1)
            await asyncio.sleep(2)  # the reader thread and its queue wind down
            return delays, (lines, skipped, before, peak, rss_mb())

        delays, (lines, skipped, before, peak, after) = asyncio.run(both())
        growth = peak - before
        p50 = delays[len(delays) // 2]
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        worst = delays[-1]
        print(f"latency over {len(delays)} lines: p50 {p50:.1f}, p99 {p99:.1f}, max {worst:.1f} ms")
        rate = (lines + skipped) / args.seconds
        print(f"writer: {lines} shown, {skipped} skipped in {args.seconds} s (~{rate:.0f}/s)")
        print(
            f"server rss: before {before:.1f} MB, during (peak) {peak:.1f} MB, "
            f"after {after:.1f} MB; growth = peak - before"
        )
        print(
            f"log latency p50={p50:.1f} ms p99={p99:.1f} ms; "
            f"5000 lines/s rss growth={growth:.1f} MB"
        )
    finally:
        for c in made:
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass
        engine.close()
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
