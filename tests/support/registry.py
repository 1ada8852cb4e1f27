"""A real Docker registry for tests: Debian's `docker-registry` (Distribution 2.8).

It listens on 127.0.0.1 (the engine allows plain HTTP to loopback registries), asks
for HTTP basic auth against an htpasswd file (bcrypt: the registry accepts nothing
else), stores blobs in a temporary directory and allows deletes unless told not to.
`stop()` and `start()` keep the port and the data, so a test can make the registry
unreachable and bring it back.

No Django here: usable from fixtures, benchmarks and by hand, e.g.
    python -c 'from tests.support.registry import TestRegistry as R; r = R(); r.start(); print(r)'
"""

from __future__ import annotations

import ctypes
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BIN = "docker-registry"
HTPASSWD_BIN = "htpasswd"


class RegistryError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # The registry must not outlive a test process killed before its teardown ran.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class TestRegistry:
    """A docker-registry process on 127.0.0.1:<port> with one htpasswd user."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        username: str = "pusher",
        password: str | None = None,
        *,
        delete_enabled: bool = True,
        auth: bool = True,
        port: int | None = None,
    ):
        self.username = username
        self.password = password or "pw-" + secrets.token_urlsafe(12)
        self.delete_enabled = delete_enabled
        self.auth = auth
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dockyard-registry-"))
        self.config = self.dir / "config.yml"
        self.log = self.dir / "registry.log"
        self._proc: subprocess.Popen | None = None
        self._log_file = None
        self._write_files()

    @property
    def url(self) -> str:
        """host:port, as an image reference names it."""
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.url}"

    def __repr__(self) -> str:
        return f"TestRegistry({self.url!r}, user={self.username!r}, dir={str(self.dir)!r})"

    def _write_files(self):
        (self.dir / "data").mkdir()
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir / 'data'}",
            "  delete:",
            f"    enabled: {'true' if self.delete_enabled else 'false'}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  headers:",
            "    X-Content-Type-Options: [nosniff]",
        ]
        if self.auth:
            htpasswd = subprocess.run(
                [HTPASSWD_BIN, "-Bbn", self.username, self.password],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (self.dir / "htpasswd").write_text(htpasswd)
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: dockyard-test",
                f"    path: {self.dir / 'htpasswd'}",
            ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15) -> TestRegistry:
        if self.running:
            return self
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads need it here
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RegistryError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RegistryError(f"docker-registry did not answer on {self.url} in {timeout}s")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.http_url}/v2/", timeout=1).close()  # noqa: S310
            return True
        except urllib.error.HTTPError:
            return True  # 401: up, and asking for credentials
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self):
        """Stop the process; the port and data stay for `start()`."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def destroy(self):
        """Stop and remove the directory (config, htpasswd, blobs, log)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()
