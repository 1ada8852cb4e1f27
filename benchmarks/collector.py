"""Metrics collector: one sweep over N running containers vs `docker stats --no-stream`.

Targets: a sweep costs at most 0.5 ms per container, and is at
least 100x faster than `docker stats --no-stream` on the same containers.

    scripts/testenv.sh up                         # dockerd, Redis on :6390, the test image
    .venv/bin/python benchmarks/collector.py      # --containers 200 is the default

Starts N containers from the test image (labelled dockyard.bench.collector=<run id>),
registers the local engine as a Host in a throw-away SQLite database (production
settings, DEBUG off) and mirrors them. One warm-up sweep finds every container's pid
(one inspect each, as a fresh worker does) and is shown apart; then --sweeps timed
sweeps exactly as beat runs them (`collector.sweep_host`: read the cgroup and /proc
files, compute, bulk-insert the samples, publish to the host's channel group), each
with wall time and this process's CPU time. Then `docker stats --no-stream` on the
same container ids, timed. The last two lines are always

    collector CPU <percent>% of one core at the <interval> s interval
    collector <ms> ms/container; docker stats <s> s; ratio <r>x

Everything it made (the containers, the temp directory) is removed at the end, also
on an error, Ctrl-C or SIGTERM. See benchmarks/README.md.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="dockyard-bench-collector-")
RUN_ID = uuid.uuid4().hex[:8]
# Production settings (DEBUG off: no query log), fresh keys and database in TMP.
os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
os.environ["DASHBOARD_DEBUG"] = "false"
os.environ["DASHBOARD_GENERATE_KEYS"] = "true"
os.environ["DASHBOARD_DATA_DIR"] = TMP
os.environ["DATABASE_URL"] = f"sqlite:///{TMP}/db.sqlite3"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")
# Its own channel prefix: the sweeps' messages reach nobody else's sockets.
os.environ["CHANNELS_PREFIX"] = f"bench-collector-{RUN_ID}"

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

DOCKER_URL = "unix:///var/run/docker.sock"
IMAGE = os.environ.get("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
LABEL = "dockyard.bench.collector"
TARGET_MS = 0.5
TARGET_RATIO = 100.0
# Idle, exits at once on SIGTERM (busybox sleep as PID 1 would ignore it).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def say(*args):
    print(*args, flush=True)


def start_containers(api, n):
    def create(i):
        cid = api.create_container(
            IMAGE, COMMAND, name=f"bench-collector-{RUN_ID}-{i:03d}", labels={LABEL: RUN_ID}
        )["Id"]
        api.start(cid)
        return cid

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(n)))


def remove_containers(api):
    ids = [c["Id"] for c in api.containers(all=True, filters={"label": f"{LABEL}={RUN_ID}"})]

    def remove(cid):
        try:
            api.remove_container(cid, force=True, v=True)
        except Exception as exc:  # already gone, or being removed
            if getattr(exc, "status_code", None) not in (404, 409):
                raise

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, ids))
    return len(ids)


def setup_mirror(ids):
    """Register the local engine, sync its mirror, keep only this run's containers."""
    from django.utils import timezone

    from containers.models import Container
    from containers.services import sync_host
    from dashboard.models import Host

    host = Host.objects.create(name="local", url=DOCKER_URL, all_teams=True)
    listed = sync_host(host)
    # Containers of others on this engine (a test suite alongside) would be swept too;
    # the figures are for an engine holding only the benchmark's.
    others = Container.objects.filter(host=host, removed_at__isnull=True).exclude(docker_id__in=ids)
    foreign = others.update(removed_at=timezone.now())
    mine = Container.objects.filter(host=host, docker_id__in=ids, removed_at__isnull=True).count()
    return host, listed, foreign, mine


def timed_sweep(host):
    from monitoring import collector

    c0, w0 = time.process_time(), time.perf_counter()
    result = collector.sweep_host(host)
    return result, time.process_time() - c0, time.perf_counter() - w0


def docker_stats(ids):
    """`docker stats --no-stream` on these containers: (seconds, rows printed)."""
    w0 = time.perf_counter()
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}", *ids],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return time.perf_counter() - w0, len(out.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--sweeps", type=int, default=10, help="timed sweeps (default 10)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--profile", action="store_true", help="print a profile of one sweep")
    args = parser.parse_args()

    api = docker.APIClient(base_url=DOCKER_URL, version="1.41", timeout=120)
    interval = settings.METRICS_INTERVAL
    ms_per = stats_s = ratio = cpu_share = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        call_command("migrate", verbosity=0)
        say(f"starting {args.containers} containers ({IMAGE}, label {LABEL}={RUN_ID})")
        t0 = time.monotonic()
        ids = start_containers(api, args.containers)
        say(f"  started in {time.monotonic() - t0:.1f} s")
        host, listed, foreign, mine = setup_mirror(ids)
        say(
            f"mirror: engine lists {listed}, {mine} of this run mirrored, {foreign} others left out"
        )
        if mine != len(ids):
            raise SystemExit(f"only {mine} of {len(ids)} containers in the mirror")

        result, cpu, wall = timed_sweep(host)
        say(
            f"warm-up sweep (finds each pid with one inspect): {result.samples} containers by "
            f"{result.method}, wall {wall * 1000:.0f} ms, cpu {cpu * 1000:.0f} ms"
        )
        if result.method != "cgroup" or result.samples != len(ids):
            raise SystemExit(f"the warm-up sweep did not read every container: {result}")

        sweeps = []
        for _ in range(args.sweeps):
            time.sleep(0.5)  # some time between readings, as between real sweeps
            sweeps.append(timed_sweep(host))
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(timed_sweep, host)
            order = os.environ.get("PROFILE_SORT", "cumulative")
            pstats.Stats(profile).sort_stats(order).print_stats(30)
        walls = [s[2] for s in sweeps]
        cpus = [s[1] for s in sweeps]
        samples = {s[0].samples for s in sweeps}
        wall_med, cpu_med = statistics.median(walls), statistics.median(cpus)
        say(
            f"{len(sweeps)} sweeps of {'/'.join(map(str, sorted(samples)))} containers: wall "
            f"median {wall_med * 1000:.1f} ms (min {min(walls) * 1000:.1f}, max "
            f"{max(walls) * 1000:.1f}); cpu median {cpu_med * 1000:.1f} ms"
        )
        from monitoring.models import Sample

        say(f"  stored {Sample.objects.count()} samples (includes the warm-up sweep)")

        stats_s, rows = docker_stats(ids)
        say(
            f"docker stats --no-stream on the same {len(ids)} containers: "
            f"{stats_s:.2f} s ({rows} rows)"
        )
        load = os.getloadavg()
        say(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        ms_per = wall_med * 1000 / len(ids)
        ratio = stats_s / wall_med
        cpu_share = 100 * cpu_med / interval
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        removed = remove_containers(api)
        api.close()
        shutil.rmtree(TMP, ignore_errors=True)
        say(f"cleaned up: {removed} containers removed, {TMP} deleted")
    say(f"collector CPU {cpu_share:.2f}% of one core at the {interval:g} s interval")
    say(f"collector {ms_per:.3f} ms/container; docker stats {stats_s:.1f} s; ratio {ratio:.0f}x")
    missed = ms_per > TARGET_MS or ratio < TARGET_RATIO
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
