"""Log archive: CPU share of one core and lines lost, 100 containers x 100 lines/s.

Target: the archive's ingest costs at most 10% of one core, and loses no line.

    scripts/testenv.sh up                       # dockerd and dockyard-test/busybox:latest
    .venv/bin/python benchmarks/archive.py      # --containers 100 --seconds 60

Starts N containers from the test image (labelled dockyard.bench.archive=<run id>),
each printing 100 numbered lines a second (`<hostname> <n>`, n counting from 0).
With production settings (DEBUG off) and a throw-away SQLite database in a temp data
directory, it registers the local engine as a Host and syncs the mirror, then calls
`logs.tasks.capture_all_logs` (what beat runs) every LOG_ARCHIVE_EVERY seconds
(default 5) in this process for --seconds, with this process's CPU time
(`time.process_time`) measured around each call. CPU share = capture CPU / wall time
of the window. Then it stops the containers, runs one final capture, and compares
each container's archived numbers with what it printed (its last number, from the
engine's log tail): lost = expected - distinct archived; duplicates are counted
apart. The last line is always

    archive ingest cpu=<percent>% of one core, lost=<n> lines

Everything it made (the containers, the temp directory) is removed at the end, also
on an error, Ctrl-C or SIGTERM. See benchmarks/README.md.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="dockyard-bench-archive-")
# Production settings (DEBUG off: no query log), fresh keys and database in TMP.
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ["DASHBOARD_DEBUG"] = "false"
os.environ["DASHBOARD_GENERATE_KEYS"] = "true"
os.environ["DASHBOARD_DATA_DIR"] = TMP
os.environ["DATABASE_URL"] = f"sqlite:///{TMP}/db.sqlite3"

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

DOCKER_URL = "unix:///var/run/docker.sock"
IMAGE = os.environ.get("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
LABEL = "dockyard.bench.archive"
TARGET_PERCENT = 10.0
# A batch of 100 numbered lines a second: the second's `sleep 1` runs in the background
# while the batch prints, so the time the loop takes (~0.1 s on a loaded machine) does
# not slow the rate down. Exits at once on SIGTERM (the trap interrupts `wait`).
SCRIPT = (
    "trap 'exit 0' TERM; i=0; while :; do sleep 1 & j=0; while [ $j -lt {per} ]; do "
    'echo "$HOSTNAME $i"; i=$((i+1)); j=$((j+1)); done; wait $!; done'
)


def say(*args):
    print(*args, flush=True)


def every_seconds():
    return float(settings.CELERY_BEAT_SCHEDULE["capture-logs"]["schedule"])


def engine_time(stamp):
    """Seconds since the epoch of the engine's RFC 3339 time with nanoseconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


# ---------------------------------------------------------------- containers


def start_containers(api, n, per_second, run_id):
    script = SCRIPT.replace("{per}", str(per_second))

    def create(i):
        cid = api.create_container(
            IMAGE,
            ["sh", "-c", script],
            name=f"bench-archive-{run_id}-{i:03d}",
            labels={LABEL: run_id},
        )["Id"]
        api.start(cid)
        return cid

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(n)))


def stop_containers(api, ids):
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda cid: api.stop(cid, timeout=5), ids))


def remove_containers(api, run_id):
    ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL}={run_id}"})]

    def remove(cid):
        try:
            api.remove_container(cid, force=True, v=True)
        except Exception as exc:  # already gone, or being removed
            if getattr(exc, "status_code", None) not in (404, 409):
                raise

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, ids))
    return len(ids)


def printed(api, cid):
    """(lines printed, seconds it ran): the container's own counter, from its last line."""
    tail = api.logs(cid, stdout=True, stderr=False, tail=1).decode().split()
    info = api.inspect_container(cid)["State"]
    ran = engine_time(info["FinishedAt"]) - engine_time(info["StartedAt"])
    return (int(tail[-1]) + 1 if tail else 0), ran


# ---------------------------------------------------------------- the archive


def setup_mirror(ids):
    """Register the local engine, sync its mirror, keep only this run's containers."""
    from django.utils import timezone

    from containers.models import Container
    from containers.services import sync_host
    from dashboard.models import Host

    host = Host.objects.create(name="local", url=DOCKER_URL, all_teams=True)
    listed = sync_host(host)
    # Other containers on this engine (a test suite running alongside) would be
    # captured too; the figures are for an engine holding only the benchmark's.
    others = Container.objects.filter(host=host, removed_at__isnull=True).exclude(docker_id__in=ids)
    foreign = others.update(removed_at=timezone.now())
    mine = Container.objects.filter(host=host, docker_id__in=ids, removed_at__isnull=True)
    return host, listed, foreign, {c.docker_id: c for c in mine}


def timed_capture():
    """One capture pass exactly as beat runs it: (lines, cpu seconds, wall seconds)."""
    from logs.tasks import capture_all_logs

    c0, w0 = time.process_time(), time.monotonic()
    lines = capture_all_logs()["lines"]
    return lines, time.process_time() - c0, time.monotonic() - w0


def archived_numbers(container, hostname):
    from logs.archive import archived_lines

    numbers, other = [], 0
    for line in archived_lines(container):
        head, _, n = line.text.partition(" ")
        if head == hostname and n.isdigit():
            numbers.append(int(n))
        else:
            other += 1
    return numbers, other


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--per-second", type=int, default=100, help="lines a second each")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    api = docker.APIClient(base_url=DOCKER_URL, version="1.41", timeout=120)
    every = every_seconds()
    percent = lost = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        call_command("migrate", verbosity=0)
        say(f"starting {args.containers} containers ({IMAGE}, label {LABEL}={run_id})")
        t0 = time.monotonic()
        ids = start_containers(api, args.containers, args.per_second, run_id)
        say(f"  started in {time.monotonic() - t0:.1f} s")
        host, listed, foreign, rows = setup_mirror(ids)
        say(
            f"mirror: engine lists {listed} containers, {len(rows)} of this run mirrored, "
            f"{foreign} others left out"
        )
        if len(rows) != len(ids):
            raise SystemExit(f"only {len(rows)} of {len(ids)} containers in the mirror")

        # The first pass catches up on what was printed while the containers started
        # and the mirror was synced; it is shown apart and not in the window.
        lines, cpu, wall = timed_capture()
        say(f"catch-up pass: {lines} lines, cpu {cpu * 1000:.0f} ms, wall {wall * 1000:.0f} ms")

        say(f"capturing every {every:g} s (LOG_ARCHIVE_EVERY) for {args.seconds:g} s")
        passes = []  # (lines, cpu, wall)
        start = time.monotonic()
        k = 1
        while True:
            due = start + k * every
            if due > start + args.seconds + 1e-6:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            passes.append(timed_capture())
            k += 1
        window = time.monotonic() - start
        cpu_total = sum(p[1] for p in passes)
        wall_total = sum(p[2] for p in passes)
        lines_total = sum(p[0] for p in passes)
        percent = 100 * cpu_total / window
        cpus = sorted(p[1] for p in passes)
        walls = sorted(p[2] for p in passes)
        say(
            f"window {window:.1f} s: {len(passes)} passes, {lines_total} lines "
            f"({lines_total / window:.0f}/s archived)"
        )
        say(
            f"  per pass: cpu median {cpus[len(cpus) // 2] * 1000:.0f} ms, "
            f"max {cpus[-1] * 1000:.0f} ms; wall median {walls[len(walls) // 2] * 1000:.0f} ms, "
            f"max {walls[-1] * 1000:.0f} ms"
        )
        say(
            f"  capture cpu {cpu_total:.2f} s, wall {wall_total:.2f} s in {window:.1f} s; "
            f"{cpu_total / max(lines_total, 1) * 1e6:.1f} us cpu per line, "
            f"{cpu_total / max(len(passes) * len(rows), 1) * 1000:.2f} ms cpu per container "
            f"per pass"
        )

        t0 = time.monotonic()
        stop_containers(api, ids)
        say(f"containers stopped in {time.monotonic() - t0:.1f} s")
        lines, cpu, wall = timed_capture()
        say(f"final pass: {lines} lines, cpu {cpu * 1000:.0f} ms, wall {wall * 1000:.0f} ms")

        expected_total = archived_total = dupes = other_total = 0
        lost = 0
        rates, worst = [], (0, "")
        for cid in ids:
            expected, ran = printed(api, cid)
            hostname = cid[:12]
            numbers, other = archived_numbers(rows[cid], hostname)
            distinct = set(numbers)
            missing = sum(1 for n in range(expected) if n not in distinct)
            lost += missing
            dupes += len(numbers) - len(distinct)
            other_total += other
            expected_total += expected
            archived_total += len(distinct)
            rates.append(expected / ran if ran > 0 else 0.0)
            worst = max(worst, (missing, hostname))
        rates.sort()
        say(
            f"printed: {expected_total} lines by {len(ids)} containers; rate per container "
            f"median {rates[len(rates) // 2]:.1f}/s (min {rates[0]:.1f}, max {rates[-1]:.1f}), "
            f"together {sum(rates):.0f}/s"
        )
        say(
            f"archived: {archived_total} distinct numbered lines, {other_total} other lines; "
            f"worst container lost {worst[0]} ({worst[1] or '-'})"
        )
        say(f"duplicates: {dupes} lines archived more than once")
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        removed = remove_containers(api, run_id)
        api.close()
        shutil.rmtree(TMP, ignore_errors=True)
        say(f"cleaned up: {removed} containers removed, {TMP} deleted")
    say(f"archive ingest cpu={percent:.1f}% of one core, lost={lost} lines")
    return 1 if args.check and (percent > TARGET_PERCENT or lost) else 0


if __name__ == "__main__":
    sys.exit(main())
