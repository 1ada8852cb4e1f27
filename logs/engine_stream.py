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


def _shutdown(sock):
    raw = getattr(sock, "_sock", sock)
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


class Follower:
    """A thread that follows the log into a bounded queue; lines that do not fit are
    counted as skipped (the viewer fell behind), so memory stays flat."""

    def __init__(self, host, docker_id, tail, since, keep, timestamps, queue_size=5000):
        self.host, self.docker_id, self.tail, self.since = host, docker_id, tail, since
        self.keep, self.timestamps = keep, timestamps
        self.queue = queue.Queue(maxsize=queue_size)
        self.skipped = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ended = threading.Event()
        self.error = ""
        self._res = self._sock = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"logs-{docker_id[:12]}")

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopped.set()
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
                lines.append(self.queue.get_nowait())
            except queue.Empty:
                break
        with self.lock:
            skipped, self.skipped = self.skipped, 0
        return lines, skipped

    def _put(self, line):
        if self.keep is not None and not self.keep(line.text):
            return
        try:
            self.queue.put_nowait(line.html(self.timestamps))
        except queue.Full:
            with self.lock:
                self.skipped += 1

    def _run(self):
        client = None
        try:
            client = open_client(self.host)
            self._res, self._sock, frames = log_frames(
                client, self.docker_id, follow=True, tail=self.tail, since=self.since
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
        except Exception as exc:
            if not self.stopped.is_set():
                self.error = f"The log stream ended: {type(exc).__name__}"
        finally:
            self.ended.set()
            if client is not None:
                client.close()
