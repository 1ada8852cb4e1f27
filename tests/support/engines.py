"""A second Docker engine in its own network namespace (DESIGN.md section 7).

Two-host tests need a real second engine. It runs in its own network namespace because
a second dockerd in the host's namespace deletes the first one's docker0 bridge. It is
entered with `nsenter --net` rather than `ip netns exec`, which remounts /sys and so
hides the cgroup mounts dockerd needs.

No Django here: usable from fixtures, benchmarks and by hand, e.g.
    python -c 'from tests.support.engines import SecondEngine; SecondEngine().destroy()'
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

DEFAULT_IMAGE = "dockyard-test/busybox:latest"

# The engine's own addresses. Docker's default pools (172.17-31.x, 192.168.x) are what
# the first engine hands out; keeping this engine outside them means an address in a
# test names one host only, and a veth link between the namespaces stays possible.
BRIDGE_IP = "10.213.0.1/24"
ADDRESS_POOL = "base=10.213.128.0/17,size=24"


class SecondEngineError(RuntimeError):
    pass


class SecondEngine:
    """A dockerd at unix://BASE/docker.sock, in network namespace NAME, data under BASE."""

    def __init__(self, name: str = "dockyard-h2", base: str = "/tmp/dockyard-h2"):
        self.name = name
        self.base = Path(base)
        if not self.base.is_absolute() or self.base == Path("/"):
            raise ValueError(f"base must be an absolute directory other than /: {base}")
        self.image = os.environ.get("DOCKYARD_TEST_IMAGE", DEFAULT_IMAGE)
        self.netns = Path("/var/run/netns") / name
        self.pidfile = self.base / "docker.pid"
        self.log = self.base / "dockerd.log"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.base}/docker.sock"

    def __repr__(self) -> str:
        return f"SecondEngine({self.name!r}, {self.url!r})"

    def docker(self, *args: str, check: bool = True, timeout: float = 120):
        """Run the docker CLI against this engine; returns the CompletedProcess."""
        return subprocess.run(
            ["docker", "-H", self.url, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def running(self) -> bool:
        try:
            return self.docker("info", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 60) -> None:
        if not self.running():
            self._start_daemon(timeout)
        self._load_image()

    def _start_daemon(self, timeout: float) -> None:
        self._ensure_netns()
        for sub in ("data", "exec"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # An empty config file of its own: flags that /etc/docker/daemon.json also set
        # (data-root, hosts, ...) would otherwise make this dockerd refuse to start.
        config = self.base / "daemon.json"
        config.write_text("{}\n")
        cmd = [
            "nsenter",
            f"--net={self.netns}",
            "dockerd",
            f"--host={self.url}",
            f"--data-root={self.base / 'data'}",
            f"--exec-root={self.base / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--config-file={config}",
            f"--bip={BRIDGE_IP}",
            f"--default-address-pool={ADDRESS_POOL}",
        ]
        with open(self.log, "wb") as log:  # this run only, so a failure shows its own log
            # Own session (setsid): the engine must not get the test run's Ctrl-C, and
            # may outlive this process until stop() or destroy().
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.running():
            exited = self._proc.poll() is not None
            if exited or time.monotonic() > deadline:
                why = "exited" if exited else f"gave no answer in {timeout} s"
                self.stop()  # leave nothing half-started behind
                raise SecondEngineError(f"second dockerd {why}; log:\n{self._log_tail()}")
            time.sleep(0.2)

    def _ensure_netns(self) -> None:
        if not os.path.ismount(self.netns):
            # A name without its bind mount (left by a crash) would make `add` fail.
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        ip = ["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"]
        subprocess.run(ip, check=True, capture_output=True)

    def _load_image(self) -> None:
        """Copy the test image from the first engine (no registry can be reached)."""
        want = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", self.image],
            capture_output=True,
            text=True,
        )
        if want.returncode != 0:
            raise SecondEngineError(f"{self.image} is not on the first engine: {want.stderr}")
        have = self.docker("image", "inspect", "-f", "{{.Id}}", self.image, check=False)
        # Same id means same content (save/load keeps it); a rebuilt image is reloaded.
        if have.returncode == 0 and have.stdout.strip() == want.stdout.strip():
            return
        save = subprocess.Popen(["docker", "save", self.image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", self.url, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        save.stdout.close()
        if save.wait(timeout=120) != 0 or load.returncode != 0:
            raise SecondEngineError(f"could not load {self.image}: {load.stderr}")

    def stop(self) -> None:
        """Stop the daemon (it stops its containers first); data stays for a fast restart."""
        for pid in self._daemon_pids():
            _kill(pid, signal.SIGTERM)
            # dockerd gives each container its stop timeout (10 s unless set) first.
            if not self._wait_gone(pid, 20):
                _kill(pid)
                self._wait_gone(pid, 10)
        # After a SIGKILL (or a crash) containerd and its shims outlive dockerd.
        self._kill_leftovers()
        self.pidfile.unlink(missing_ok=True)
        self._proc = None

    def destroy(self) -> None:
        """Remove every trace: containers, daemon, mounts, namespace and BASE."""
        if self.running():
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *ids, check=False)
        self.stop()
        self._unmount_all()
        if self.netns.exists() or os.path.ismount(self.netns):
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        if self.base.exists():
            raise SecondEngineError(f"could not remove {self.base}")

    def _daemon_pids(self) -> list[int]:
        """Our dockerd: found by its pidfile and by its unique --host, never by name alone."""
        pids = set()
        if self._proc is not None and self._proc.poll() is None:
            pids.add(self._proc.pid)
        try:
            pids.add(int(self.pidfile.read_text().strip()))
        except (OSError, ValueError):
            pass
        for pid, argv in _processes():
            if Path(argv[0]).name == "dockerd" and f"--host={self.url}" in argv:
                pids.add(pid)
        return [p for p in pids if self._is_our_dockerd(p)]

    def _is_our_dockerd(self, pid: int) -> bool:
        argv = _argv(pid)
        return bool(argv) and Path(argv[0]).name == "dockerd" and f"--host={self.url}" in argv

    def _wait_gone(self, pid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                self._proc.poll()  # reap our own child, or it lingers as a zombie
            if not _alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _kill_leftovers(self) -> None:
        """What outlives a killed dockerd: containerd and shims with sockets under BASE
        (with the containers they run) and anything else in our network namespace
        (docker-proxy, say). Found by path and namespace, never by name alone."""
        marker = str(self.base) + "/"
        try:
            netns = os.stat(self.netns).st_ino
        except OSError:
            netns = None
        for pid, argv in list(_processes()):
            shim = Path(argv[0]).name.startswith("containerd") and any(marker in a for a in argv)
            if shim:
                # A shim's child is a container's init: killing it ends the whole container.
                for child in _children(pid):
                    _kill(child)
            if shim or (netns is not None and _netns_inode(pid) == netns):
                _kill(pid)

    def _unmount_all(self) -> None:
        # Deepest first: overlay and nsfs mounts sit inside the data root's own bind mount.
        for point in sorted(_mounts_under(self.base), key=len, reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _processes():
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _argv(int(entry.name))
            if argv:
                yield int(entry.name), argv


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return bool(stat) and stat[0] != "Z"  # a zombie has exited


def _children(pid: int) -> list[int]:
    return [p for p, _ in _processes() if _stat(p)[1:2] == [str(pid)]]


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like escaped as octal.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(base) or point.startswith(prefix):
            points.append(point)
    return points
