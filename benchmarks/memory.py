"""Benchmark: the memory `make run` holds when idle, with one host and 50 containers.

Target: all of make run's processes together at most 250 MB PSS when idle.

    scripts/testenv.sh up                 # dockerd and dockyard-test/busybox:latest
    .venv/bin/python benchmarks/memory.py [--containers 50] [--check]

Starts 50 containers (`sleep 3600` in the test image, labelled
dockyard.bench.memory=<run id>), then scripts/run.sh exactly as `make run` does, on a
free port, with its own Redis on another free port and a temporary data directory.
Once the dashboard answers, it logs in as the admin and opens the container list once
(a real first visit: the mirror of the 50 containers is filled, the templates are
loaded), waits until the processes are idle (CPU quiet), and prints the PSS of every
process of the run (scripts/run.sh's bash, supervisord and everything under it, from
/proc/PID/smaps_rollup) and their total. The last line is always

    make run idle PSS: N MB (target <= 250 MB)

(MB here: MiB, 1024 kB as /proc counts them). Everything it started (the run, its
processes, the containers, the data directory) is removed at the end, also on an
error, Ctrl-C or SIGTERM. See benchmarks/README.md.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER_URL = "unix:///var/run/docker.sock"
IMAGE = os.environ.get("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
LABEL = "dockyard.bench.memory"
# Exits at once on SIGTERM (busybox sleep as PID 1 would ignore it).
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
TARGET_MB = 250
ADMIN_PASSWORD = "bench-memory-pass-123!"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(*args):
    print(*args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- processes


def _stat(pid):
    """(ppid, utime + stime in seconds) from /proc/PID/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree(root):
    """root and all its descendants."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(entry.name)
            if st:
                children.setdefault(st[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def pss_kb(pid):
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def role(pid):
    cmd = cmdline(pid)
    for needle, name in (
        ("supervisord", "supervisord"),
        ("redis-server", "redis"),
        ("celery", "worker (+ beat, events watcher)"),
        ("daphne", "web (daphne)"),
        ("scripts/run.sh", "scripts/run.sh (bash, waits for supervisord)"),
    ):
        if needle in cmd:
            return name
    return cmd[:60]


def cpu_seconds(pids):
    return sum(st[1] for st in map(_stat, pids) if st)


def wait_idle(root, quiet_seconds, threshold, timeout):
    """Wait until the tree used less than `threshold` of one CPU over `quiet_seconds`."""
    samples = []  # (time, cpu seconds)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), cpu_seconds(tree(root))))
        old = [s for s in samples if s[0] <= samples[-1][0] - quiet_seconds]
        if old:
            t0, c0 = old[-1]
            t1, c1 = samples[-1]
            load = (c1 - c0) / (t1 - t0)
            if load < threshold:
                return True, load, t1 - samples[0][0]
        time.sleep(0.5)
    return False, None, timeout


# ---------------------------------------------------------------- containers


def docker_api():
    import docker

    return docker.APIClient(base_url=DOCKER_URL, version="1.41", timeout=120)


def start_containers(api, n, run_id):
    def create(i):
        cid = api.create_container(
            IMAGE, SLEEP, name=f"bench-memory-{run_id}-{i:03d}", labels={LABEL: run_id}
        )["Id"]
        api.start(cid)
        return cid

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, range(n)))


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


# ---------------------------------------------------------------- the run


def start_run(data_dir, port, redis_port, log_path):
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        DASHBOARD_PORT=str(port),
        DASHBOARD_REDIS_PORT=str(redis_port),
        DASHBOARD_DATA_DIR=str(data_dir),
        DASHBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def leftovers(data_dir, redis_port):
    """This run's processes by their environment (and its Redis, which rewrites it)."""
    marker = f"DASHBOARD_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") or cmdline(entry.name).startswith(
            f"redis-server 127.0.0.1:{redis_port}"
        ):
            found.append(int(entry.name))
    return found


def stop_run(proc, data_dir, redis_port):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for pid in leftovers(data_dir, redis_port):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(what, check, timeout, proc, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"scripts/run.sh exited with {proc.returncode} while waiting for {what}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def first_visit(url, n):
    """Log in as the admin and open the container list, as a person would."""
    import requests

    session = requests.Session()
    page = session.get(url + "/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        url + "/accounts/login/",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise SystemExit(f"could not log in as admin: {response.status_code}")
    listing = session.get(url + "/containers/", timeout=60)
    rows = listing.text.count('<tr id="container-')
    if listing.status_code != 200 or rows < n:
        raise SystemExit(f"container list: status {listing.status_code}, {rows} rows (< {n})")
    return rows


def answers(url):
    import requests

    try:
        return requests.get(url + "/accounts/login/", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--quiet-seconds", type=float, default=5.0, help="idle window")
    parser.add_argument(
        "--idle-cpu", type=float, default=0.03, help="idle: less than this share of one CPU"
    )
    parser.add_argument("--idle-timeout", type=float, default=120.0)
    parser.add_argument("--check", action="store_true", help="exit 1 above the target")
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-memory-"))
    data_dir, log_path = tmp / "data", tmp / "run.log"
    port, redis_port = free_port(), free_port()
    api = docker_api()
    proc = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        say(f"starting {args.containers} containers ({IMAGE}, label {LABEL}={run_id})")
        start_containers(api, args.containers, run_id)
        say(f"starting scripts/run.sh on 127.0.0.1:{port} (Redis :{redis_port}, data {data_dir})")
        proc = start_run(data_dir, port, redis_port, log_path)
        url = f"http://127.0.0.1:{port}"
        wait_until("the login page", lambda: answers(url), 180, proc, log_path)
        wait_until("the worker", lambda: "ready." in log_path.read_text(), 120, proc, log_path)
        rows = first_visit(url, args.containers)
        say(f"logged in, container list shows {rows} rows; waiting for idle")
        idle, load, waited = wait_idle(
            proc.pid, args.quiet_seconds, args.idle_cpu, args.idle_timeout
        )
        if idle:
            say(f"idle after {waited:.0f} s (CPU {load * 100:.1f}% of one core)")
        else:
            say(f"WARNING: not idle within {args.idle_timeout:.0f} s; measuring anyway")

        pids = tree(proc.pid)
        total = 0
        say(f"{'pid':>7}  {'PSS MB':>7}  process")
        for pid in sorted(pids):
            kb = pss_kb(pid)
            total += kb
            say(f"{pid:>7}  {kb / 1024:7.1f}  {role(pid)}")
        mb = round(total / 1024)
        say(f"{'':>7}  {total / 1024:7.1f}  total ({len(pids)} processes)")
    except KeyboardInterrupt:
        say("interrupted; cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if proc is not None:
            stop_run(proc, data_dir, redis_port)
        removed = remove_containers(api, run_id)
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"cleaned up: the run stopped, {removed} containers removed")
    # Last, after the clean-up, so that it is the last line of the output.
    say(f"make run idle PSS: {mb} MB (target <= {TARGET_MB} MB)")
    return 1 if args.check and mb > TARGET_MB else 0


if __name__ == "__main__":
    sys.exit(main())
