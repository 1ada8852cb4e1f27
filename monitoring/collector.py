"""The collector: one sweep per host every METRICS_INTERVAL seconds, inside the worker.

Local hosts (the engine's containers are processes of this kernel, and their pids
and cgroups are visible here) are read from the cgroup files: no engine call in
the steady state. A container's cgroup is found through /proc/<State.Pid>/cgroup,
the pid coming from inspect once and again whenever that file no longer names the
container (it stopped, restarted, or the pid was reused). Whether a host is local
is decided by trying (`probe`): its running containers' pids must lead to cgroups
that name them. Any other host falls back to the stats API (`stream=false`,
`one-shot=true`, so one quick reply per container), in parallel on a bounded
thread pool.

The previous reading of each container is kept in this process (`_states`) to
take rates against; a fresh process (or `collect_metrics --once`) primes itself
with one reading first.

After each host's samples are stored the sweep is published once to the channel
group `metrics.host.<id>` (every stats page of that host listens there: 50 viewers
cost no engine call) and `monitoring.signals.sweep_done` is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from containers.models import Container
from dashboard.engine import EngineError, engine, translate
from dashboard.models import Host

from . import cgroup
from .models import Collection, HostSample, Sample
from .queries import METRICS
from .signals import sweep_done

log = logging.getLogger(__name__)

COLLECTED_STATES = ("running", "paused")  # both have a live cgroup, as docker stats shows
INFO_MAX_AGE = 600.0  # seconds: NCPU, MemTotal and the data root hardly change
PROBE_AGAIN_AFTER = 600.0  # seconds: a stats-API host is tried for cgroups again


def group_name(host_id):
    return f"metrics.host.{host_id}"


# --- reading files ----------------------------------------------------------------


def _read(path):
    # os.open/read/close: a third of the cost of open().read() for these tiny files,
    # which matters at ten files per container per sweep.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536).decode("ascii", "replace")
    finally:
        os.close(fd)


class NotLocal(Exception):
    """This container's cgroup cannot be read here (the reason is the message)."""


# Descriptors kept open for the located containers (8 each), at most this share of
# the process's limit; beyond it files are opened for each read.
_fd_lock = threading.Lock()
_fds_open = 0


def _fd_budget():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft // 2 if soft != resource.RLIM_INFINITY else 1 << 20


def _take_fds(n):
    global _fds_open
    with _fd_lock:
        if _fds_open + n > _fd_budget():
            return False
        _fds_open += n
        return True


def _give_fds(n):
    global _fds_open
    with _fd_lock:
        _fds_open -= n


@dataclass(slots=True)
class Located:
    """Where one container's figures are, found from its pid.

    With `fds`, the files stay open and each sweep re-reads them with one pread at
    offset 0 (cgroup and /proc files are generated on each read): a quarter of the
    cost of open + read + close. `pidfd` tells when the process exits (a restart: new
    pid, new cgroup files, new network namespace), for all containers of a host in one
    poll(); without one (/proc of another pid namespace mounted elsewhere) the pid's
    cgroup file is compared instead.
    """

    pid: int
    proc_cgroup: str  # /proc/<pid>/cgroup when located
    files: list  # [(file name, path)]
    net_dev: str
    pidfd: int | None = None
    fds: list | None = None  # [(file name, fd)], the net/dev one last
    held: int = 0  # descriptors counted against the budget

    def close(self):
        for fd in [fd for _, fd in self.fds or ()] + ([self.pidfd] if self.pidfd else []):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds, self.pidfd = None, None
        if self.held:
            _give_fds(self.held)
            self.held = 0


# The v1 limit is read from memory.stat (hierarchical_memory_limit: also the limits
# of parent cgroups): one file fewer per container and sweep.
SKIPPED_FILES = {"memory.limit_in_bytes"}


class CgroupFiles:
    """The cgroup hierarchy and /proc as this process sees them."""

    def __init__(self, proc_root=None, cgroup_root=None):
        self.proc = Path(proc_root or settings.METRICS_PROC_ROOT)
        self.root = Path(cgroup_root or settings.METRICS_CGROUP_ROOT)
        self.version = 2 if (self.root / "cgroup.controllers").exists() else 1
        # pidfds speak of this process's pid namespace, which /proc here shows.
        self.pidfds = hasattr(os, "pidfd_open") and self.proc == Path("/proc")

    def locate(self, pid, docker_id):
        """The files of the container `docker_id` whose main process is `pid`."""
        if not pid:
            raise NotLocal("not running")
        pidfd = None
        if self.pidfds:
            try:
                # Before the check below: the pidfd is then of the process checked.
                pidfd = os.pidfd_open(pid)
            except OSError as exc:
                raise NotLocal(f"no process {pid} here ({exc.strerror})") from exc
        try:
            located = self._locate(pid, docker_id)
        except BaseException:
            if pidfd is not None:
                os.close(pidfd)
            raise
        located.pidfd = pidfd
        self._open(located)
        return located

    def _locate(self, pid, docker_id):
        try:
            text = _read(self.proc / str(pid) / "cgroup")
        except OSError as exc:
            raise NotLocal(f"no process {pid} here ({exc.strerror})") from exc
        paths = cgroup.parse_proc_cgroup(text)
        files = []
        wanted = cgroup.V1_FILES if self.version == 1 else cgroup.V2_FILES
        for controller, name in wanted:
            base = paths.get(controller)
            if base is None:
                raise NotLocal(f"process {pid} has no {controller or 'v2'} cgroup")
            # The pid must be the container's: its cgroup path names the container
            # (cgroupfs: /docker/<id>; systemd: /system.slice/docker-<id>.scope).
            if docker_id not in base:
                raise NotLocal(f"process {pid} is not in the container's cgroup")
            folder = self._folder(controller, base)
            if folder is None:
                raise NotLocal(f"cgroup {controller or 'v2'}:{base} is not mounted here")
            if name not in SKIPPED_FILES:
                files.append((name, str(folder / name)))
        net_dev = str(self.proc / str(pid) / "net" / "dev")
        if not os.access(net_dev, os.R_OK):
            raise NotLocal(f"cannot read {net_dev}")
        return Located(pid=pid, proc_cgroup=text, files=files, net_dev=net_dev)

    def _open(self, located):
        want = len(located.files) + 1 + (1 if located.pidfd else 0)
        if not _take_fds(want):
            # Over the budget: this one is read by path; the pidfd is not kept either.
            if located.pidfd is not None:
                os.close(located.pidfd)
                located.pidfd = None
            return
        located.held = want
        fds = []
        try:
            for name, path in located.files:
                try:
                    fds.append((name, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
                except FileNotFoundError:
                    continue  # a controller file this kernel lacks: that figure is None
            fds.append(("net_dev", os.open(located.net_dev, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as exc:
            located.fds = fds
            located.close()
            raise NotLocal(f"cannot open the files of process {located.pid}: {exc}") from exc
        located.fds = fds

    def _folder(self, controller, base):
        base = base.lstrip("/")
        if not controller:
            folder = self.root / base
            return folder if folder.is_dir() else None
        # v1 controllers may be co-mounted ("cpu,cpuacct") with or without symlinks.
        for mount in (controller, "cpu,cpuacct", "cpuacct,cpu"):
            folder = self.root / mount / base
            if folder.is_dir():
                return folder
        return None

    def gone(self, located_list):
        """The ones whose process exited (or whose pid now names something else)."""
        gone = []
        polled = [loc for loc in located_list if loc.pidfd is not None]
        if polled:
            poller = select.poll()
            by_fd = {}
            for loc in polled:
                poller.register(loc.pidfd, select.POLLIN)
                by_fd[loc.pidfd] = loc
            gone += [by_fd[fd] for fd, _ in poller.poll(0)]  # readable: the process exited
        for loc in located_list:
            if loc.pidfd is None:
                try:
                    same = _read(self.proc / str(loc.pid) / "cgroup") == loc.proc_cgroup
                except OSError:
                    same = False
                if not same:
                    gone.append(loc)
        return gone

    def read(self, located, host_mem_total):
        """One reading; OSError when the files went away (the caller locates again)."""
        texts = {}
        if located.fds is not None:
            for name, fd in located.fds:
                texts[name] = os.pread(fd, 65536, 0).decode("ascii", "replace")
            net = texts.pop("net_dev")
        else:
            for name, path in located.files:
                try:
                    texts[name] = _read(path)
                except FileNotFoundError:
                    continue
            net = _read(located.net_dev)
        t_ns = time.time_ns()
        parse = cgroup.counters_v1 if self.version == 1 else cgroup.counters_v2
        return parse(texts, net, t_ns=t_ns, pid=located.pid, host_mem_total=host_mem_total)

    # host totals

    def host_cpu(self):
        return cgroup.parse_proc_stat_cpu(_read(self.proc / "stat"))

    def host_memory(self):
        return cgroup.parse_meminfo(_read(self.proc / "meminfo"))

    def host_load(self):
        return cgroup.parse_loadavg(_read(self.proc / "loadavg"))


# --- per-host state kept between sweeps -------------------------------------------


@dataclass
class HostState:
    located: dict = field(default_factory=dict)  # docker_id -> Located
    prev: dict = field(default_factory=dict)  # docker_id -> Counters
    host_cpu: tuple | None = None
    info: dict | None = None
    info_at: float = 0.0
    probed_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_states: dict[int, HostState] = {}
_states_lock = threading.Lock()
_pool = None
_pool_lock = threading.Lock()


def _state(host_id):
    with _states_lock:
        return _states.setdefault(host_id, HostState())


def forget(host_id=None):
    """Drop the readings kept for a host (or all): the next sweep starts afresh."""
    with _states_lock:
        ids = list(_states) if host_id is None else [host_id]
        for key in ids:
            state = _states.pop(key, None)
            if state is not None:
                for located in state.located.values():
                    located.close()


def _submit(fn, *args):
    """Run fn on the pool; a DB connection it opened (marking a host unreachable) is
    closed after, so the pool's threads hold none between sweeps."""

    def run():
        try:
            return fn(*args)
        finally:
            if connection.connection is not None:
                connection.close()

    return pool().submit(run)


def pool():
    """The bounded thread pool for engine calls (inspect, stats), made on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.METRICS_API_CONCURRENCY, thread_name_prefix="metrics"
            )
        return _pool


def _info(host, state):
    """`docker info` of the host, cached INFO_MAX_AGE s (NCPU, MemTotal, DockerRootDir)."""
    if state.info is None or time.monotonic() - state.info_at > INFO_MAX_AGE:
        with engine(host) as client:
            state.info = client.api.info()
        state.info_at = time.monotonic()
    return state.info


# --- a sweep -----------------------------------------------------------------------


@dataclass
class SweepResult:
    host_id: int
    method: str
    at: object = None
    samples: int = 0
    seconds: float = 0.0
    error: str = ""
    figures: dict = field(default_factory=dict)  # container pk -> {metric: value}


def _targets(host):
    return list(
        Container.objects.present()
        .filter(host=host, state__in=COLLECTED_STATES)
        .values_list("pk", "docker_id")
    )


def _inspect_pids(host, docker_ids):
    """{docker_id: pid} for these containers, inspected in parallel (0: not running)."""

    def one(docker_id):
        with engine(host) as client:
            return client.api.inspect_container(docker_id)["State"].get("Pid") or 0

    futures = {docker_id: _submit(one, docker_id) for docker_id in docker_ids}
    pids = {}
    for docker_id, future in futures.items():
        try:
            pids[docker_id] = future.result()
        except EngineError as exc:
            log.debug("inspect %s on %s: %s", docker_id[:12], host, exc)
    return pids


def probe(host, collection, files=None, targets=None):
    """Decide how to read `host` by trying; records the method and why on `collection`."""
    state = _state(host.pk)
    state.probed_at = time.monotonic()
    collection.probed_at = timezone.now()
    if collection.mode == Collection.Mode.STATS_API:
        collection.method, collection.reason = Collection.Method.STATS_API, "set by an admin"
        return collection.method
    files = files or CgroupFiles()
    targets = _targets(host) if targets is None else targets
    if not targets:
        # Nothing to try with yet: decided at the first sweep with a running container.
        collection.method, collection.reason = "", "no running container to try"
        return collection.method
    reasons = []
    sample = [docker_id for _, docker_id in targets[:3]]
    for docker_id, pid in _inspect_pids(host, sample).items():
        try:
            _keep(state, docker_id, files.locate(pid, docker_id))
        except NotLocal as exc:
            reasons.append(str(exc))
            continue
        collection.method = Collection.Method.CGROUP
        collection.reason = f"cgroup v{files.version} files of its containers are readable here"
        return collection.method
    collection.method = Collection.Method.STATS_API
    collection.reason = (reasons[0] if reasons else "inspect failed")[:255]
    return collection.method


def _keep(state, docker_id, located):
    old = state.located.get(docker_id)
    if old is not None and old is not located:
        old.close()
    state.located[docker_id] = located


def _drop(state, docker_id):
    old = state.located.pop(docker_id, None)
    if old is not None:
        old.close()


def _cgroup_readings(host, state, files, targets, mem_total):
    """{docker_id: Counters} read from cgroup files; re-inspects pids that changed."""
    readings = {}
    known = [state.located[d] for _, d in targets if d in state.located]
    gone = {id(loc) for loc in files.gone(known)}
    lost = []
    for _, docker_id in targets:
        located = state.located.get(docker_id)
        if located is None or id(located) in gone:
            lost.append(docker_id)
            continue
        try:
            readings[docker_id] = files.read(located, mem_total)
        except OSError:
            lost.append(docker_id)
    if lost:
        for docker_id in lost:
            _drop(state, docker_id)
        for docker_id, pid in _inspect_pids(host, lost).items():
            try:
                located = files.locate(pid, docker_id)
                _keep(state, docker_id, located)
                readings[docker_id] = files.read(located, mem_total)
            except (NotLocal, OSError):
                _drop(state, docker_id)
    return readings


def _api_readings(host, targets, mem_total, timeout):
    """{docker_id: Counters} from the stats API, `one-shot`, in parallel and bounded."""

    def one(docker_id):
        with engine(host) as client:
            stats = client.api.stats(docker_id, stream=False, one_shot=True)
        return cgroup.counters_from_stats(stats, t_ns=time.time_ns(), host_mem_total=mem_total)

    futures = {_submit(one, docker_id): docker_id for _, docker_id in targets}
    done, not_done = wait(futures, timeout=timeout)
    for future in not_done:
        future.cancel()
    readings = {}
    for future in done:
        try:
            readings[futures[future]] = future.result()
        except Exception as exc:
            log.debug("stats of %s on %s: %s", futures[future][:12], host, exc)
    return readings


def _host_totals(host, state, files, info, method):
    totals = {"ncpu": info.get("NCPU"), "mem_total_bytes": info.get("MemTotal")}
    if method != Collection.Method.CGROUP:
        return totals  # /proc here is not that host's
    try:
        cpu = files.host_cpu()
        totals["cpu_percent"] = cgroup.host_cpu_percent(state.host_cpu, cpu)
        state.host_cpu = cpu
        totals["mem_total_bytes"], totals["mem_used_bytes"] = files.host_memory()
        totals["load1"], totals["load5"], totals["load15"] = files.host_load()
    except (OSError, ValueError, KeyError) as exc:
        log.warning("host totals of %s: %s", host, exc)
    root = info.get("DockerRootDir")
    if root:
        try:
            fs = os.statvfs(root)
            totals["disk_total_bytes"] = fs.f_blocks * fs.f_frsize
            totals["disk_used_bytes"] = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        except OSError:
            pass  # the data root is not visible from here (the dashboard in a container)
    return totals


def _needs_probe(collection, state):
    if collection.mode == Collection.Mode.STATS_API:
        return collection.method != Collection.Method.STATS_API
    if collection.method == Collection.Method.STATS_API:
        # A host may become readable (the dashboard moved next to its engine).
        return state.probed_at is None or time.monotonic() - state.probed_at > PROBE_AGAIN_AFTER
    return not collection.method


def read_host(host, collection, files=None):
    """Read every collected container of `host` once: ({pk: figures}, totals, method)."""
    state = _state(host.pk)
    files = files or CgroupFiles()
    info = _info(host, state)
    mem_total = info.get("MemTotal") or None
    targets = _targets(host)
    method = collection.method
    if _needs_probe(collection, state):
        method = probe(host, collection, files, targets)
    if method == Collection.Method.CGROUP:
        readings = _cgroup_readings(host, state, files, targets, mem_total)
    elif method == Collection.Method.STATS_API:
        timeout = max(1.0, settings.METRICS_INTERVAL * 0.8)
        readings = _api_readings(host, targets, mem_total, timeout)
    else:
        readings = {}
    if method == Collection.Method.CGROUP and targets and not readings:
        # Not one container could be read: try again from scratch at the next sweep.
        collection.method, collection.reason = "", "no container's cgroup was readable"
    figures = {}
    for pk, docker_id in targets:
        cur = readings.get(docker_id)
        if cur is None:
            continue
        figures[pk] = cgroup.metrics(state.prev.get(docker_id), cur, host_mem_total=mem_total)
        state.prev[docker_id] = cur
    # Forget containers no longer collected, so the state stays as big as the host.
    present = {docker_id for _, docker_id in targets}
    for docker_id in [d for d in state.prev if d not in present]:
        del state.prev[docker_id]
    for docker_id in [d for d in state.located if d not in present]:
        _drop(state, docker_id)
    totals = _host_totals(host, state, files, info, method)
    totals["containers"] = len(figures)
    return figures, totals, method


def _insert_samples(host, at, figures):
    """One INSERT statement run for all rows (executemany).

    bulk_create compiles every field of every row through the ORM, which was half the
    cost of a sweep (~0.4 ms per row); the rows here are plain numbers, so the
    statement is built once and the values go to the driver as they are.
    """
    if not figures:
        return
    meta = Sample._meta
    columns = ["container_id", "host_id", "at", *METRICS]
    # Only names from the model's _meta, quoted by the backend: no outside input.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        connection.ops.quote_name(meta.db_table),
        ", ".join(connection.ops.quote_name(meta.get_field(c).column) for c in columns),
        ", ".join(["%s"] * len(columns)),
    )
    at_db = meta.get_field("at").get_db_prep_value(at, connection)
    rows = [(pk, host.pk, at_db, *(values[m] for m in METRICS)) for pk, values in figures.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _store(host, collection, at, figures, totals, seconds, error=""):
    with transaction.atomic():
        _insert_samples(host, at, figures)
        HostSample.objects.create(host=host, period=HostSample.RAW, at=at, **totals)
        collection.last_sweep_at = at
        collection.last_sweep_ms = seconds * 1000
        collection.last_containers = len(figures)
        collection.last_error = error
        collection.save()
        ids = list(figures)
        transaction.on_commit(lambda: _announce(host.pk, at, figures, ids))


def _announce(host_id, at, figures, container_ids):
    publish(host_id, at, figures)
    # Robust: a failing receiver (alerting) must not stop the sweeps of other hosts.
    results = sweep_done.send_robust(
        sender=Sample, host_id=host_id, at=at, container_ids=container_ids
    )
    for receiver, outcome in results:
        if isinstance(outcome, Exception):
            log.error(
                "sweep_done receiver %r failed for host %s",
                receiver,
                host_id,
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )


def publish(host_id, at, figures):
    """One message per sweep to the host's group; each stats socket takes its container's."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {
        "type": "metrics.sweep",
        "at": at.timestamp(),
        "metrics": list(METRICS),
        "samples": {str(pk): [values.get(m) for m in METRICS] for pk, values in figures.items()},
    }
    _publisher.send(layer, group_name(host_id), message)


class _Publisher:
    """An event loop in a thread of its own that hands sweeps to the channel layer.

    `async_to_sync` would make a new event loop per call, and channels_redis a new
    Redis connection per loop: most of a sweep's time on a loaded machine. One loop
    for the process keeps its connection, and the sweep does not wait for Redis.
    A message that cannot be sent is dropped (the samples are stored; a page gets
    them from the history); at most MAX_PENDING wait, so a stuck Redis costs no memory.
    """

    MAX_PENDING = 100

    def __init__(self):
        self.lock = threading.Lock()
        self.loop = None
        self.thread = None
        self.pending = 0

    def _ensure_loop(self):
        if self.thread is None or not self.thread.is_alive():  # first use, or after a fork
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(
                target=self.loop.run_forever, name="metrics-publisher", daemon=True
            )
            self.thread.start()
            self.pending = 0
        return self.loop

    def send(self, layer, group, message):
        with self.lock:
            if self.pending >= self.MAX_PENDING:
                log.warning("metrics publisher: %s messages waiting; dropped one", self.pending)
                return
            self.pending += 1
            loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
        future.add_done_callback(self._done)

    def _done(self, future):
        with self.lock:
            self.pending -= 1
        if future.exception() is not None:
            log.warning("could not publish a sweep: %s", future.exception())


_publisher = _Publisher()


def sweep_host(host, files=None, store=True):
    """Read and (with `store`) record one sweep of `host`; returns a SweepResult."""
    collection, _ = Collection.objects.get_or_create(host=host)
    state = _state(host.pk)
    started = time.perf_counter()
    at = timezone.now()
    if not state.lock.acquire(blocking=False):
        return SweepResult(host.pk, collection.method, error="a sweep of this host is running")
    try:
        try:
            figures, totals, method = read_host(host, collection, files)
        except EngineError as exc:
            collection.last_error = exc.message
            collection.save(update_fields=["last_error"])
            return SweepResult(host.pk, collection.method, error=exc.message)
        except Exception as exc:  # one broken host must not stop the others' sweeps
            err = translate(host, exc)
            log.exception("metrics sweep of %s failed", host)
            collection.last_error = err.message
            collection.save(update_fields=["last_error"])
            return SweepResult(host.pk, collection.method, error=err.message)
        seconds = time.perf_counter() - started
        if store:
            _store(host, collection, at, figures, totals, seconds)
        elif collection.pk:
            collection.save()
        return SweepResult(host.pk, method, at, len(figures), seconds, figures=figures)
    finally:
        state.lock.release()


_sweep_lock = threading.Lock()


def collect(hosts=None, prime=False):
    """One sweep of every host (or `hosts`); with `prime`, read once first for the rates.

    Returns the SweepResults; None when another sweep of this process is still running
    (a slow engine must not pile sweeps up behind each other).
    """
    if not _sweep_lock.acquire(blocking=False):
        return None
    try:
        if hosts is None:
            # An unreachable engine is left to the mirror sync, which probes it and
            # marks it reachable again; waiting on its timeouts would delay the others.
            hosts = Host.objects.exclude(state=Host.State.UNREACHABLE)
        hosts = list(hosts)
        if prime:
            cold = [h for h in hosts if not _state(h.pk).prev]
            for host in cold:
                sweep_host(host, store=False)
            if cold:
                time.sleep(settings.METRICS_PRIME_SECONDS)
        return [sweep_host(host) for host in hosts]
    finally:
        _sweep_lock.release()
