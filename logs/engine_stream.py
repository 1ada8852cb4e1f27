"""Read a container's log from the engine: demultiplexed frames, in a worker thread.

The engine sends non-TTY output with an 8-byte header per frame (stream, length);
`frames_iter` splits it. Each stream gets its own client with a long read timeout,
closed (socket shut down) to stop the thread.
"""

import contextlib
import queue
import socket
import struct
import threading
from datetime import UTC, datetime

import docker
from docker.constants import STREAM_HEADER_SIZE_BYTES
from docker.utils.socket import STDERR

from dashboard.engine import API_VERSION, _refuse_insecure, _tls_config, _url

from .render import LineAssembler

STREAMS = {STDERR: "stderr"}
FOLLOW_TIMEOUT = 24 * 3600


def open_client(host, timeout=FOLLOW_TIMEOUT):
    _refuse_insecure(host)
    client = docker.APIClient(
        base_url=_url(host), version=API_VERSION, timeout=timeout, tls=_tls_config(host)
    )
    client.trust_env = False
    return client


def log_frames(client, docker_id, follow, tail="all", since=None, tty=None):
    """(stream name, bytes) frames of the container's log, timestamps included."""
    params = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "follow": 1 if follow else 0,
        "tail": tail,
    }
    if since is not None:
        params["since"] = since
    if tty is None:
        tty = client.inspect_container(docker_id)["Config"].get("Tty", False)
    res = client._get(client._url("/containers/{0}/logs", docker_id), params=params, stream=True)
    client._raise_for_status(res)
    sock = client._get_raw_response_socket(res)
    return res, sock, _frames(res, tty)


def _read_exactly(raw, n):
    data = b""
    while len(data) < n:
        part = raw.read(n - len(data))
        if not part:
            return None
        data += part
    return data


def _frames(res, tty):
    """Demultiplex the body (chunked HTTP, decoded by urllib3): an 8-byte header per
    frame (stream type, 3 zero bytes, big-endian length) unless the container has a TTY."""
    if tty:
        for data in res.iter_content(chunk_size=None):
            yield "stdout", data
        return
    raw = res.raw
    while True:
        header = _read_exactly(raw, STREAM_HEADER_SIZE_BYTES)
        if header is None:
            return
        kind, length = struct.unpack(">BxxxL", header)
        data = _read_exactly(raw, length) if length else b""
        if data is None:
            return
        yield STREAMS.get(kind, "stdout"), data


def read_lines(client, docker_id, tail="all", since=None):
    """All lines of the log now (no follow), in order."""
    res, _sock, frames = log_frames(client, docker_id, follow=False, tail=tail, since=since)
    assembler = LineAssembler()
    try:
        for stream, data in frames:
            yield from assembler.feed(stream, data)
        yield from assembler.flush()
    finally:
        res.close()


def time_ns(stamp):
    """Nanoseconds since the epoch of an engine timestamp (RFC 3339, UTC), or None."""
    if not stamp or not stamp.endswith("Z"):
        return None
    whole, _, frac = stamp[:-1].partition(".")
    try:
        seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if not frac.isdigit() and frac:
        return None
    return int(seconds.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def since_param(ns):
    """The engine's `since` for a time in nanoseconds: seconds.nanoseconds."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _shutdown(sock):
    raw = getattr(sock, "_sock", sock)
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


UNREACHABLE = "Engine unreachable — reconnecting…"
STOPPED = "The container is not running — waiting for it to start…"
RETRY_FIRST, RETRY_MAX = 0.5, 8.0  # seconds between attempts to reach the engine again
STOPPED_POLL = 2.0  # seconds between looks at a stopped container


class Follower:
    """A thread that follows the log into a bounded queue; lines that do not fit are
    counted as skipped (the viewer fell behind), so memory stays flat.

    The follow survives the engine: when the stream breaks or ends, the thread asks
    the engine about the container. Unreachable: `status` says so and it tries again
    with back-off. Stopped: it waits for the container to run again. Running (again):
    it follows anew from the time of the last line it had (`since`), dropping lines at
    or before that time, so no line is queued twice. Only a container removed from
    the engine ends the follow (`ended`, `error` says why).

    `after_ns`: lines at or before this time (ns since the epoch) are not wanted, e.g.
    when the page reconnects and says which line it had last.
    """

    def __init__(
        self, host, docker_id, tail, since, keep, timestamps, queue_size=5000, after_ns=None
    ):
        self.host, self.docker_id, self.tail, self.since = host, docker_id, tail, since
        self.keep, self.timestamps = keep, timestamps
        self.queue = queue.Queue(maxsize=queue_size)
        self.skipped = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ended = threading.Event()
        self.error = ""
        self.status = ""  # "" while the log is followed live; else what is wrong
        self.after_ns = after_ns  # the newest line seen so far (queued, filtered or skipped)
        self.resume_ns = after_ns  # lines at or before this are dropped (set per stream)
        self.taken_ns = after_ns  # the newest line handed out by take()
        self._res = self._sock = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"logs-{docker_id[:12]}")

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopped.set()
        self._close_stream()

    def _close_stream(self):
        if self._sock is not None:
            _shutdown(self._sock)
        if self._res is not None:
            with contextlib.suppress(Exception):
                self._res.close()

    def take(self, limit):
        """Up to `limit` queued lines (as HTML) and the number skipped since the last call."""
        lines = []
        while len(lines) < limit:
            try:
                ns, html = self.queue.get_nowait()
            except queue.Empty:
                break
            lines.append(html)
            if ns is not None and (self.taken_ns is None or ns > self.taken_ns):
                self.taken_ns = ns
        with self.lock:
            skipped, self.skipped = self.skipped, 0
        return lines, skipped

    def _put(self, line):
        ns = time_ns(line.time)
        if ns is not None:
            if self.resume_ns is not None and ns <= self.resume_ns:
                return  # had it already (the stream restarts at `since`, inclusive)
            # Within one stream stdout and stderr may interleave slightly out of time
            # order: only the resume point drops lines; the newest time is the next one.
            if self.after_ns is None or ns > self.after_ns:
                self.after_ns = ns
        if self.keep is not None and not self.keep(line.text):
            return
        try:
            self.queue.put_nowait((ns, line.html(self.timestamps)))
        except queue.Full:
            with self.lock:
                self.skipped += 1

    def _follow(self, client, follow=True):
        """Follow one stream until it ends (the container stopped, the engine went).

        A stopped container's log is read without `follow`: a follow opened on it may
        never see the lines it writes once started again."""
        self.resume_ns = self.after_ns
        if self.after_ns is not None:
            tail, since = "all", since_param(self.after_ns)
        else:
            tail, since = self.tail, self.since
        self._res, self._sock, frames = log_frames(
            client, self.docker_id, follow=follow, tail=tail, since=since
        )
        if self.stopped.is_set():
            return
        assembler = LineAssembler()
        for stream, data in frames:
            if self.stopped.is_set():
                return
            for line in assembler.feed(stream, data):
                self._put(line)
        for line in assembler.flush():
            self._put(line)

    def _running(self, client):
        """Whether the container runs; raises NotFound when it is gone."""
        return bool(client.inspect_container(self.docker_id)["State"].get("Running"))

    def _run(self):
        delay = RETRY_FIRST
        try:
            while not self.stopped.is_set():
                client = None
                try:
                    client = open_client(self.host)
                    running = self._running(client)
                    delay = RETRY_FIRST  # the engine answered
                    if not running and self.status == STOPPED:
                        self.stopped.wait(STOPPED_POLL)
                        continue
                    if running:
                        self.status = ""
                    self._follow(client, follow=running)
                    if self.stopped.is_set():
                        return
                    if not self._running(client):
                        self.status = STOPPED
                except docker.errors.NotFound:
                    if not self.stopped.is_set():
                        self.error = "The container is gone from the engine."
                    return
                except Exception:
                    if self.stopped.is_set():
                        return
                    self.status = UNREACHABLE
                    self.stopped.wait(delay)
                    delay = min(delay * 2, RETRY_MAX)
                finally:
                    self._close_stream()
                    self._res = self._sock = None
                    if client is not None:
                        client.close()
        finally:
            self.ended.set()
