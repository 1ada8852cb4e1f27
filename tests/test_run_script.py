"""`make run` (scripts/run.sh): one sentence for what is missing; a safe dashboard that
serves its pages and static files over plain HTTP, survives a killed worker, and
leaves no process behind after Ctrl-C.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "run-script-pass-123!"


def run_script(**env):
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        cwd=ROOT,
    )


def test_no_engine_on_the_socket_is_one_clear_sentence():
    result = run_script(DASHBOARD_LOCAL_DOCKER="unix:///tmp/dockyard-no-such.sock")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "No Docker engine is listening on unix:///tmp/dockyard-no-such.sock: start dockerd "
        "(e.g. 'systemctl start docker' or 'dockerd &')."
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_busy_port_is_one_clear_sentence():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_script(DASHBOARD_PORT=str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Something already listens on 127.0.0.1:{port}: stop it, or choose another port "
        "with DASHBOARD_PORT=8001."
    ]


def test_a_placeholder_key_is_one_clear_sentence(tmp_path):
    result = run_script(
        SECRET_KEY="change-me-to-50-random-characters",
        DASHBOARD_DATA_DIR=str(tmp_path),
        DASHBOARD_PORT=str(free_port()),
        REDIS_URL="redis://127.0.0.1:1/0",  # never reached: the settings refuse first
        DJANGO_SETTINGS_MODULE="dashboard.settings",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("SECRET_KEY is still a placeholder: set it")
    assert "Traceback" not in result.stderr


# --- the real thing ------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_of(data_dir, redis_port):
    """Pids of this run's processes: every one whose environment names its data directory,
    and its Redis (redis-server rewrites its environment along with its title)."""
    marker = f"DASHBOARD_DATA_DIR={data_dir}".encode()
    redis = f"redis-server 127.0.0.1:{redis_port}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") or cmdline(entry.name).startswith(redis):
            found.append(int(entry.name))
    return found


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kind(pid):
    cmd = cmdline(pid)
    for needle, name in (
        ("supervisord", "supervisord"),
        ("redis-server", "redis"),
        ("celery", "worker"),
        ("daphne", "web"),
        ("scripts/run.sh", "run.sh"),
    ):
        if needle in cmd:
            return name
    return cmd


def wait_for(what, check, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Run:
    def __init__(self, proc, port, redis_port, data_dir, log_path):
        self.proc, self.port, self.redis_port = proc, port, redis_port
        self.data_dir, self.log_path = data_dir, log_path
        self.url = f"http://127.0.0.1:{port}"

    def processes(self):
        return processes_of(self.data_dir, self.redis_port)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=10, allow_redirects=False, **kwargs)

    def answers(self):
        try:
            return self.get("/accounts/login/").status_code == 200
        except requests.RequestException:
            return False

    def pids_of(self, name):
        return [p for p in self.processes() if kind(p) == name]

    def worker_pids(self):
        return [p for p in self.processes() if "celery" in cmdline(p) and " worker " in cmdline(p)]


@pytest.fixture
def make_run(tmp_path):
    """scripts/run.sh on free ports (web and its own Redis) with a temp data directory;
    every process it started is gone afterwards, whatever happened."""
    data_dir = tmp_path / "data"
    log_path = tmp_path / "run.log"
    port, redis_port = free_port(), free_port()
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        DASHBOARD_PORT=str(port),
        DASHBOARD_REDIS_PORT=str(redis_port),
        DASHBOARD_DATA_DIR=str(data_dir),
        DASHBOARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's job would be
        )
    run = Run(proc, port, redis_port, data_dir, log_path)
    try:
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid in run.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_make_run_serves_survives_killed_processes_and_stops_cleanly(make_run):
    run = make_run
    wait_for("the login page", lambda: run.answers() or run.proc.poll() is not None, 120)
    assert run.proc.poll() is None, run.log()[-4000:]

    # Three processes under one supervisor: web, worker (with beat and the events
    # watcher inside), and the private Redis; run.sh waits for supervisord.
    wait_for("the worker to be ready", lambda: "ready." in run.log(), 60)
    kinds = sorted(kind(p) for p in run.processes())
    assert kinds == ["redis", "run.sh", "supervisord", "web", "worker"], kinds
    log = run.log()
    assert "beat: Starting" in log and "events watcher runs inside this worker" in log

    # The login page and its static files, with DEBUG off.
    page = run.get("/accounts/login/")
    assert 'name="password"' in page.text
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    for asset in assets:
        response = run.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
        wanted = "text/css" if asset.endswith(".css") else "javascript"
        assert wanted in response.headers["Content-Type"], asset

    # Plain error pages: no URL patterns, no traceback.
    missing = run.get("/no-such-page/")
    assert missing.status_code == 404
    assert "Not found (404)" in missing.text and "URLconf" not in missing.text

    # Logging in over plain HTTP on loopback works (no Secure cookie, no redirect).
    session = requests.Session()
    login = session.get(run.url + "/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    response = session.post(
        run.url + "/accounts/login/",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = session.get(run.url + "/", timeout=10, allow_redirects=False)
    assert home.status_code == 200 and "Log out" in home.text

    # Kill the worker: the web keeps serving, and the worker comes back.
    (worker,) = run.worker_pids()
    os.kill(worker, signal.SIGKILL)
    for _ in range(5):
        assert run.answers()
        time.sleep(0.2)
    wait_for("the worker to come back", lambda: [p for p in run.worker_pids() if p != worker], 30)
    wait_for("the new worker to be ready", lambda: run.log().count("ready.") >= 2, 60)
    assert "exited: worker (terminated by SIGKILL; not expected)" in run.log()
    assert run.answers()
    assert run.proc.poll() is None

    # Kill the web server: supervisord starts it again, and the same session still works.
    (web,) = run.pids_of("web")
    os.kill(web, signal.SIGKILL)
    wait_for("a new web server", lambda: [p for p in run.pids_of("web") if p != web], 30)
    wait_for("the web server to answer again", run.answers, 30)
    assert "exited: web (terminated by SIGKILL; not expected)" in run.log()
    assert session.get(run.url + "/", timeout=10, allow_redirects=False).status_code == 200

    # Queued work survives a Redis crash: the append-only file in the data directory.
    import redis

    queue = redis.Redis(port=run.redis_port, socket_timeout=5)
    queue.lpush("dockyard-run-test-queue", "a queued job")
    time.sleep(1.5)  # appendfsync everysec: the write is on disk within a second
    (server,) = run.pids_of("redis")
    os.kill(server, signal.SIGKILL)

    def queued():
        try:
            return queue.lrange("dockyard-run-test-queue", 0, -1) == [b"a queued job"]
        except redis.RedisError:
            return False

    wait_for("Redis to come back with the queued job", queued, 30)
    queue.close()
    assert "exited: redis (terminated by SIGKILL; not expected)" in run.log()
    assert run.pids_of("web") and run.pids_of("worker") and run.answers()

    # Ctrl-C (SIGINT to the foreground process group) stops everything.
    started = run.processes()
    os.killpg(run.proc.pid, signal.SIGINT)
    run.proc.wait(timeout=45)
    wait_for("every process to be gone", lambda: not run.processes(), 10)
    assert not [p for p in started if Path(f"/proc/{p}").exists()]
    assert not run.answers()
    aof = b"".join(f.read_bytes() for f in (run.data_dir / "redis").rglob("*.aof"))
    assert b"dockyard-run-test-queue" in aof
