"""Harness for the fault tests: real processes, real signals.

- `private_redis`: a redis-server of these tests only (free loopback port, AOF on, its
  own directory), which a test may SIGKILL and start again on the same port and data.
- `worker`: real `celery worker` subprocesses (thread pool, beat inside as a thread
  running `recover_jobs` every second) on that Redis and on the test database, each
  in its own process group so a SIGKILL takes the whole worker at once.
- `slow_engine`: the local engine behind a loopback unix-socket proxy that holds
  chosen requests (a container start, a create) for a while, so that a worker is
  killed at a known point: while its request is on the way to the engine.

Jobs are made by the test process through the services with `no_task_queue`: nothing
is sent from here, the worker's own beat-run recovery finds them in the database and
sends them (the database is the source of truth for jobs).

Every process started here is killed at teardown, failure or not (and at exit, should
a teardown not run); containers the workers made carry WORKER_RUN_ID and are removed.
"""

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import docker
import pytest
from django.conf import settings
from django.db import connection

from containers.models import Container
from containers.services import sync_host
from dashboard.engine import forget_client
from dashboard.models import AuditEntry, Host, Job
from tests.support.helpers import RUN_LABEL, TEST_LABEL, share_test_image, unique

ROOT = Path(settings.BASE_DIR)
# The run id the workers run under: their queue (test-<id>) is not the one the session's
# in-process worker consumes, and what they create is labelled with it (cleaned up here).
WORKER_RUN_ID = f"{settings.RUN_ID}-faults"
WORKER_QUEUE = f"test-{WORKER_RUN_ID}"
LEASE_SECONDS = 3
RESEND_SECONDS = 2
RECOVER_EVERY = 1

# Process groups started here and not yet reaped: killed at exit if a teardown was skipped.
_started = {}


@atexit.register
def _kill_leftovers():
    for pgid in list(_started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _spawn(args, *, env=None, log=None, cwd=None):
    """Start `args` in a new session (its own process group), output to `log`."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in _reap)
    proc = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc._faults_log = out
    _started[proc.pid] = proc
    return proc


def _kill_group(proc, timeout=10):
    """SIGKILL the process group of `proc` and wait until its leader is gone."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=timeout)
    finally:
        _reap(proc)


def _reap(proc):
    _started.pop(proc.pid, None)
    log = getattr(proc, "_faults_log", None)
    if log not in (None, subprocess.DEVNULL):
        log.close()


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate, timeout, what, detail=lambda: ""):
    """Poll `predicate` until it returns something truthy; fail saying `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}\n{detail()}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_tmpdir(prefix):
    # Unix socket paths must stay short (108 bytes): not under pytest's deep tmp_path.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


# --- Redis --------------------------------------------------------------------------


class PrivateRedis:
    """redis-server on 127.0.0.1:<port>, append-only file in `dir`."""

    def __init__(self, folder):
        self.port = free_port()
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self, timeout=10):
        assert self.proc is None, "already running"
        args = [
            shutil.which("redis-server"),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--appendonly", "yes",
            "--dir", str(self.dir),
            "--save", "",
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = _spawn(args, log=self.dir / "redis.log")
        wait_for(self.ping, timeout, f"redis-server on port {self.port} answers", self.log_tail)

    def ping(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"redis-server exited ({self.proc.returncode}):\n{self.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        """SIGKILL: no shutdown save; what is in the AOF is what survives."""
        _kill_group(self.proc)
        self.proc = None

    def command(self, *args):
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def log_tail(self, lines=20):
        return _tail(self.dir / "redis.log", lines)


def _tail(path, lines):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@pytest.fixture
def private_redis():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not found (apt-get install redis-server)")
    folder = short_tmpdir("dyf-redis-")
    server = PrivateRedis(folder)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)


# --- Celery workers -----------------------------------------------------------------


def database_url():
    """The test database this process uses, as a DATABASE_URL for a worker."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(Path(s["NAME"]).resolve())
        return f"sqlite:///{name}"  # name is absolute: sqlite:////abs/path
    if connection.vendor == "postgresql":
        auth = quote(s["USER"] or "", safe="")
        if s.get("PASSWORD"):
            auth += ":" + quote(s["PASSWORD"], safe="")
        host = s.get("HOST") or "/var/run/postgresql"
        host = quote(host, safe="") if host.startswith("/") else host
        port = f":{s['PORT']}" if s.get("PORT") else ""
        return f"postgres://{auth}@{host}{port}/{s['NAME']}"
    raise NotImplementedError(f"no DATABASE_URL for {connection.vendor}")


class Workers:
    """Starts and kills `celery worker` processes; one runs at a time."""

    def __init__(self, redis, folder):
        self.redis = redis
        self.folder = Path(folder)
        self.proc = None
        self.started = 0

    @property
    def log_path(self):
        return self.folder / f"worker-{self.started}.log"

    def env(self, data_dir):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CELERY_BROKER_URL", "CELERY_QUEUE", "DATABASE_URL", "REDIS_URL")
        }
        env.update(
            DJANGO_SETTINGS_MODULE="dashboard.settings_test",
            DOCKYARD_TEST_RUN_ID=WORKER_RUN_ID,
            DOCKYARD_TEST_IMAGE=settings.TEST_IMAGE,
            REDIS_URL=self.redis.url,
            CELERY_BROKER_URL=self.redis.url,
            DATABASE_URL=database_url(),
            DASHBOARD_WORKER_EMBEDS="beat",
            JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            JOB_RESEND_SECONDS=str(RESEND_SECONDS),
            JOB_RECOVER_EVERY=str(RECOVER_EVERY),
            DASHBOARD_DATA_DIR=str(data_dir),
            # The keys this process uses (they may come from files in the data directory).
            SECRET_KEY=settings.SECRET_KEY,
            DASHBOARD_FERNET_KEY=settings.FERNET_KEY,
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "a worker is running"
        self.started += 1
        # A fresh data directory each time: the beat schedule of a killed worker may be
        # half-written, and beat's first file tells that this worker's beat is up.
        data_dir = self.folder / f"data-{self.started}"
        data_dir.mkdir()
        self.data_dir = data_dir
        args = [
            str(ROOT / ".venv/bin/celery"),
            "-A", "dashboard",
            "worker",
            "--pool", "threads",
            "--concurrency", "2",
            "-Q", WORKER_QUEUE,
            "--loglevel", "WARNING",
            "--hostname", f"faults-{self.started}@%h",
            # Nothing to sync with (one worker per broker): start faster.
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        self.proc = _spawn(args, env=self.env(data_dir), log=self.log_path, cwd=ROOT)
        return self.proc

    def wait_ready(self, timeout=30):
        """Until the worker consumes its queue and its beat runs."""

        def ready():
            self.check_alive()
            bound = self.redis.ping() and self.redis.command(
                "EXISTS", f"_kombu.binding.{WORKER_QUEUE}"
            )
            return bound and any(self.data_dir.glob("celerybeat-schedule*"))

        wait_for(ready, timeout, "the worker is ready (queue bound, beat started)", self.log_tail)

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the worker exited ({self.proc.returncode}):\n{self.log_tail()}")

    def kill(self):
        """SIGKILL the worker's whole process group and wait until it is gone."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _kill_group(proc)
        wait_for(lambda: not _group_alive(proc.pid), 10, f"worker group {proc.pid} is gone")

    def log_tail(self, lines=40):
        return f"--- {self.log_path} ---\n" + _tail(self.log_path, lines)


def _remove_worker_containers():
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    try:
        for c in client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={WORKER_RUN_ID}"}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_container(c["Id"], force=True, v=True)
    finally:
        client.close()


@pytest.fixture
def workers(private_redis, transactional_db, engine_cleanup):
    """Celery workers on the private Redis and the test database (start one with .start())."""
    folder = short_tmpdir("dyf-worker-")
    manager = Workers(private_redis, folder)
    try:
        yield manager
    finally:
        try:
            manager.kill()
        finally:
            _remove_worker_containers()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def worker(workers):
    """One worker, started and ready."""
    workers.start()
    workers.wait_ready()
    return workers


# --- A slow engine --------------------------------------------------------------------


class SlowEngineProxy:
    """A unix socket in front of the local engine that holds matching requests.

    A chunk the client sends whose bytes match `hold` waits `seconds` before it goes on
    to the engine. If the client died meanwhile, `deliver` decides: True — it still
    goes (the request was on its way; the engine acts, nobody hears the answer);
    False — it is dropped (the engine never hears of it). With `answer=False` a held
    request goes on to the engine and the client's connection is closed at once, as
    when the engine dies mid-request: the engine acts, the client gets no answer.
    Everything else passes as is.
    """

    def __init__(self, upstream="/var/run/docker.sock"):
        self.upstream = upstream
        self.folder = short_tmpdir("dyf-eng-")
        self.path = str(self.folder / "docker.sock")
        self.url = f"unix://{self.path}"
        self.hold = None
        self.remaining = self.taken = 0
        self.seconds = 0
        self.deliver = True
        self.answer = True
        self.held = []  # (request line, delivered) of every held request
        self.holding = threading.Event()  # set when a request is being held
        self._socks = set()
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True, name="slow-engine").start()

    def hold_requests(self, pattern, seconds, deliver=True, count=1, answer=True):
        """Hold the next `count` requests matching `pattern` (then none: a rerun passes)."""
        self.hold, self.seconds, self.deliver = re.compile(pattern.encode()), seconds, deliver
        self.answer = answer
        self.remaining, self.taken = count, 0
        self.holding.clear()

    def wait_holding(self, timeout=15, count=1):
        assert self.holding.wait(timeout), f"no request held within {timeout} s"
        wait_for(lambda: self.taken >= count, timeout, f"{count} requests held")

    def _take_hold(self, data):
        with self._lock:
            if self.hold is None or not self.hold.search(data):
                return False
            self.remaining -= 1
            self.taken += 1
            if self.remaining <= 0:
                self.hold = None
            self.holding.set()
            return True

    def close(self):
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            for s in list(self._socks):
                with contextlib.suppress(OSError):
                    s.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _track(self, s):
        with self._lock:
            self._socks.add(s)
        return s

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(self.upstream)
            except OSError:
                client.close()
                continue
            self._track(client)
            self._track(up)
            threading.Thread(target=self._to_engine, args=(client, up), daemon=True).start()
            threading.Thread(target=self._to_client, args=(up, client), daemon=True).start()

    def _to_engine(self, client, up):
        linger = 0
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if self._take_hold(data):
                    time.sleep(self.seconds)
                    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
                    if not self.deliver and _peer_closed(client):
                        self.held.append((line, False))
                        break
                    self.held.append((line, True))
                    linger = 15  # let the engine finish what it was asked, unheard
                    if not self.answer:
                        up.sendall(data)
                        client.shutdown(socket.SHUT_RDWR)  # the answer is lost
                        break
                up.sendall(data)
        except OSError:
            pass
        # A client that dies mid-request must not cancel what the engine is doing.
        time.sleep(linger)
        for s in (client, up):
            with contextlib.suppress(OSError):
                s.close()

    def _to_client(self, up, client):
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                with contextlib.suppress(OSError):
                    client.sendall(data)  # a dead client: keep reading the engine
        except OSError:
            pass
        with contextlib.suppress(OSError):
            client.close()


def _peer_closed(sock):
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture
def slow_engine():
    proxy = SlowEngineProxy()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def slow_host(slow_engine, db):
    """Host `slow`: the local engine through `slow_engine`, open to every team."""
    host = Host.objects.create(name="slow", url=slow_engine.url, all_teams=True)
    share_test_image(host)  # as a dashboard admin does: non-admins may run it
    yield host
    forget_client(host)


@pytest.fixture
def make_created(engine_cleanup, cast):
    """A container created (not started) on `host`, mirrored, owned by owner/alpha."""

    def make(host, name=None):
        client = docker.DockerClient(base_url=host.url, version="1.41")
        try:
            made = client.api.create_container(
                settings.TEST_IMAGE,
                ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
                name=name or unique("flt"),
                labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID},
            )
        finally:
            client.close()
        sync_host(host)
        Container.objects.filter(host=host, docker_id=made["Id"]).update(
            owner=cast.owner, team=cast.alpha
        )
        return Container.objects.get(host=host, docker_id=made["Id"])

    return make


# --- What the engine and the database say -------------------------------------------------


def engine_events(docker_id, action, since):
    """How many `action` events the engine logged for the container since `since` (epoch s)."""
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    try:
        events = client.events(
            since=int(since) - 1,
            until=int(time.time()) + 1,
            filters={"type": "container", "container": docker_id, "event": action},
            decode=True,
        )
        return sum(1 for e in events if e.get("Action", e.get("status")) == action)
    finally:
        client.close()


def intents(job):
    return list(AuditEntry.objects.filter(job_id=job.pk).order_by("at", "id"))


def job_state(job):
    return Job.objects.get(pk=job.pk)


def running_with_intent(job):
    """The job is claimed by a worker and its intent is on record (engine asked, or about to be)."""
    fresh = Job.objects.get(pk=job.pk)
    pending = AuditEntry.objects.filter(job_id=job.pk, result=AuditEntry.Result.PENDING)
    return fresh.status == Job.Status.RUNNING and pending.exists()


def no_job_left_behind():
    stuck = Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
    assert not stuck.exists(), f"jobs left queued or running: {list(stuck.values())}"
    open_intents = AuditEntry.objects.filter(result=AuditEntry.Result.PENDING)
    assert not open_intents.exists(), f"intents left pending: {list(open_intents.values())}"
