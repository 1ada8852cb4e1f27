"""The engine side of a console: one tty exec, its socket, and a clean end.

Docker does not end an exec when its client goes away (the process keeps running
in the container), so `close()` asks the process to end (Ctrl-C, then EOF), closes
the socket, and kills what is left: every process carrying this session's marker
in its environment, found by a second, short exec as root (it needs `sh` in the
container).
"""

import secrets
import socket
import threading
import time

from dashboard.engine import EngineError, engine

# Kills every process whose environment carries the session marker ($1).
KILL_SCRIPT = (
    'for d in /proc/[0-9]*; do p="${d#/proc/}"; '
    '[ "$p" = "$$" ] && continue; '
    'if tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -qx "DOCKYARD_CONSOLE=$1"; '
    'then kill -KILL "$p" 2>/dev/null && echo "$p"; fi; done'
)


class ExecSession:
    def __init__(self, host, docker_id, command, user="", privileged=False, cols=80, rows=24):
        self.host, self.docker_id = host, docker_id
        self.command, self.user, self.privileged = command, user, privileged
        self.cols, self.rows = cols, rows
        self.marker = secrets.token_hex(8)
        self.exec_id = None
        self.sock = None
        self._closing = threading.Event()
        self._send_lock = threading.Lock()

    def start(self):
        """Create and start the exec; raises EngineError."""
        with engine(self.host) as client:
            api = client.api
            self.exec_id = api.exec_create(
                self.docker_id,
                self.command,
                stdin=True,
                tty=True,
                user=self.user,
                privileged=self.privileged,
                environment={"TERM": "xterm-256color", "DOCKYARD_CONSOLE": self.marker},
            )["Id"]
            raw = api.exec_start(self.exec_id, socket=True, tty=True)
            self.sock = getattr(raw, "_sock", raw)
            self.sock.settimeout(0.5)  # the reader looks at `_closing` this often
            self.resize(self.cols, self.rows)

    def resize(self, cols, rows):
        with engine(self.host) as client:
            client.api.exec_resize(self.exec_id, height=rows, width=cols)

    def read_loop(self, on_output):
        """Call `on_output(bytes)` for everything the process writes; returns at EOF or close."""
        while not self._closing.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            on_output(data)

    def send(self, data):
        with self._send_lock:
            self.sock.sendall(data)

    def running(self):
        with engine(self.host) as client:
            info = client.api.exec_inspect(self.exec_id)
        return info.get("Running", False), info.get("ExitCode")

    def close(self, grace=1.0):
        """End the process and the socket. Returns (exit code or None, processes killed, alive?)."""
        self._closing.set()
        if self.exec_id is None:
            return None, 0, False
        if self.sock is not None:
            for key in (b"\x03", b"\x04"):  # interrupt what runs, then EOF at the prompt
                try:
                    self.send(key)
                except OSError:
                    break
                time.sleep(0.05)
        alive, code = self._wait(grace)
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        # Always: what the session left behind (a background job, a daemon) goes too.
        try:
            killed = self.kill()
        except EngineError:
            killed = 0
        if alive:
            alive, code = self._wait(3.0)
        return code, killed, alive

    def _wait(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            try:
                alive, code = self.running()
            except Exception:
                return True, None
            if not alive or time.monotonic() >= deadline:
                return alive, code
            time.sleep(0.1)

    def kill(self):
        """SIGKILL every process of this session (the marker in their environment); how many."""
        with engine(self.host) as client:
            api = client.api
            kill_id = api.exec_create(
                self.docker_id, ["sh", "-c", KILL_SCRIPT, "sh", self.marker], user="0"
            )["Id"]
            out = api.exec_start(kill_id) or b""
        return len(out.split())
