"""Extra Docker engines for tests, each in its own network namespace.

`SecondEngine` is a dockerd on a unix socket; `TLSEngine` is a dockerd on
tcp://IP:2376 that demands mutual TLS, its namespace joined to the host by a veth
pair. Both run in their own network namespace because a second dockerd in the host's
namespace deletes the first one's docker0 bridge. They are entered with
`nsenter --net` rather than `ip netns exec`, which remounts /sys and so hides the
cgroup mounts dockerd needs.

No Django here: usable from fixtures, benchmarks and by hand, e.g.
    python -c 'from tests.support.engines import SecondEngine; SecondEngine().destroy()'
    python -c 'from tests.support.engines import TLSEngine; TLSEngine().destroy()'
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_IMAGE = "dockyard-test/busybox:latest"

# The engine's own addresses. Docker's default pools (172.17-31.x, 192.168.x) are what
# the first engine hands out; keeping this engine outside them means an address in a
# test names one host only, and a veth link between the namespaces stays possible.
BRIDGE_IP = "10.213.0.1/24"
ADDRESS_POOL = "base=10.213.128.0/17,size=24"

# The TLS engine's: its bridge and pool, and the /30s its veth links take (one per
# engine, the first one free on this machine, so two test runs can each have one).
TLS_BRIDGE_IP = "10.213.78.1/24"
TLS_ADDRESS_POOL = "base=10.213.80.0/20,size=24"
TLS_LINK_POOL = ipaddress.ip_network("10.213.77.0/24")
TLS_PORT = 2376


class SecondEngineError(RuntimeError):
    pass


class SecondEngine:
    """A dockerd at unix://BASE/docker.sock, in network namespace NAME, data under BASE."""

    bridge_ip = BRIDGE_IP
    address_pool = ADDRESS_POOL

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
        return f"{type(self).__name__}({self.name!r}, {self.url!r})"

    # What differs between engines: how dockerd listens, how the CLI reaches it, and
    # what the namespace needs besides loopback.

    def _listen_args(self) -> list[str]:
        return [f"--host={self.url}"]

    def cli_args(self) -> list[str]:
        """The docker CLI's flags that reach this engine."""
        return ["-H", self.url]

    def _cli_env(self) -> dict[str, str] | None:
        return None

    def _prepare(self) -> None:
        self._ensure_netns()

    def _remove_network(self) -> None:
        if self.netns.exists() or os.path.ismount(self.netns):
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)

    def docker(self, *args: str, check: bool = True, timeout: float = 120):
        """Run the docker CLI against this engine; returns the CompletedProcess."""
        return subprocess.run(
            ["docker", *self.cli_args(), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            env=self._cli_env(),
        )

    def running(self) -> bool:
        try:
            return self.docker("info", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 60, image: bool = True) -> None:
        """Start the daemon unless it runs; with `image`, copy the test image onto it."""
        if not self.running():
            self._start_daemon(timeout)
        if image:
            self.load_image()

    def _start_daemon(self, timeout: float) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self._prepare()
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
            *self._listen_args(),
            f"--data-root={self.base / 'data'}",
            f"--exec-root={self.base / 'exec'}",
            f"--pidfile={self.pidfile}",
            f"--config-file={config}",
            f"--bip={self.bridge_ip}",
            f"--default-address-pool={self.address_pool}",
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
                raise SecondEngineError(f"{self!r}: dockerd {why}; log:\n{self._log_tail()}")
            time.sleep(0.2)

    def _ensure_netns(self) -> None:
        if not os.path.ismount(self.netns):
            # A name without its bind mount (left by a crash) would make `add` fail.
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        _ip("-n", self.name, "link", "set", "lo", "up")

    def load_image(self) -> None:
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
            ["docker", *self.cli_args(), "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=120,
            env=self._cli_env(),
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
        """Remove every trace: containers, daemon, mounts, network and BASE."""
        if self.running():
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *ids, check=False)
        self.stop()
        self._unmount_all()
        self._remove_network()
        shutil.rmtree(self.base, ignore_errors=True)
        if self.base.exists():
            raise SecondEngineError(f"could not remove {self.base}")

    def _daemon_pids(self) -> list[int]:
        """Our dockerd: found by its pidfile and by its unique --pidfile flag (BASE is
        ours alone), never by name alone."""
        pids = set()
        if self._proc is not None and self._proc.poll() is None:
            pids.add(self._proc.pid)
        try:
            pids.add(int(self.pidfile.read_text().strip()))
        except (OSError, ValueError):
            pass
        for pid, argv in _processes():
            if Path(argv[0]).name == "dockerd" and self._marker in argv:
                pids.add(pid)
        return [p for p in pids if self._is_our_dockerd(p)]

    @property
    def _marker(self) -> str:
        return f"--pidfile={self.pidfile}"

    def _is_our_dockerd(self, pid: int) -> bool:
        argv = _argv(pid)
        return bool(argv) and Path(argv[0]).name == "dockerd" and self._marker in argv

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


class TLSEngine(SecondEngine):
    """A dockerd at tcp://IP:2376 demanding mutual TLS, in network namespace NAME.

    The namespace is joined to the host by a veth pair on a /30 of its own (taken from
    10.213.77.0/24, the first one no interface here uses); IP is the namespace's end.
    Its PKI is made at first start, under BASE/tls: a CA (`ca`, key included, to issue
    more certificates in tests), the server certificate for IP (serverAuth) and a
    client certificate (clientAuth) that the CLI and tests use.
    """

    bridge_ip = TLS_BRIDGE_IP
    address_pool = TLS_ADDRESS_POOL

    def __init__(self, name: str = "dockyard-mtls", base: str = "/tmp/dockyard-mtls"):
        super().__init__(name, base)
        tag = hashlib.sha256(name.encode()).hexdigest()[:8]
        self.veth_host, self.veth_ns = f"dyh{tag}", f"dyn{tag}"  # at most 15 characters
        self.tls_dir = self.base / "tls"
        self._ca: CertificateAuthority | None = None

    # ---- addresses

    @property
    def ip(self) -> str:
        """The engine's address (the namespace's end of the veth pair)."""
        try:
            return (self.base / "address").read_text().strip()
        except OSError:
            raise SecondEngineError(f"{self.name}: not started (no address yet)") from None

    @property
    def url(self) -> str:
        return f"tcp://{self.ip}:{TLS_PORT}"

    def __repr__(self) -> str:
        return f"TLSEngine({self.name!r}, {self.base})"

    def _link_up(self) -> bool:
        return (Path("/sys/class/net") / self.veth_host).exists() and (
            self.base / "address"
        ).exists()

    def _prepare(self) -> None:
        self._ensure_netns()
        self._ensure_link()
        self._ensure_pki()

    def _ensure_link(self) -> None:
        if self._link_up():
            ns_end = ["ip", "-n", self.name, "link", "show", self.veth_ns]
            if subprocess.run(ns_end, capture_output=True).returncode == 0:
                return
        self._remove_link()
        net = _free_link_network()
        host_end, ns_end = (str(a) for a in net.hosts())
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _ip("link", "set", self.veth_ns, "netns", self.name)
        _ip("addr", "add", f"{host_end}/{net.prefixlen}", "dev", self.veth_host)
        _ip("link", "set", self.veth_host, "up")
        _ip("-n", self.name, "addr", "add", f"{ns_end}/{net.prefixlen}", "dev", self.veth_ns)
        _ip("-n", self.name, "link", "set", self.veth_ns, "up")
        (self.base / "address").write_text(ns_end + "\n")

    def _remove_link(self) -> None:
        # Deleting one end of a veth pair deletes both.
        if (Path("/sys/class/net") / self.veth_host).exists():
            subprocess.run(["ip", "link", "delete", self.veth_host], capture_output=True)
        (self.base / "address").unlink(missing_ok=True)

    def _remove_network(self) -> None:
        self._remove_link()
        super()._remove_network()

    # ---- certificates

    @property
    def ca(self) -> CertificateAuthority:
        if self._ca is None:
            self._ca = CertificateAuthority.load(
                self._read("ca.pem"), self._read("ca-key.pem"), self.name
            )
        return self._ca

    @property
    def ca_pem(self) -> str:
        return self._read("ca.pem")

    @property
    def client_cert_pem(self) -> str:
        return self._read("client-cert.pem")

    @property
    def client_key_pem(self) -> str:
        return self._read("client-key.pem")

    def _read(self, name: str) -> str:
        return (self.tls_dir / name).read_text()

    def _ensure_pki(self) -> None:
        """A CA, a server certificate for IP and a client certificate (kept across
        restarts, so hosts made from them stay valid; new when IP changed)."""
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tls_dir, 0o700)
        if self._server_ip() == self.ip and (self.tls_dir / "client-key.pem").exists():
            return
        self._ca = CertificateAuthority(f"{self.name} test CA")
        files = {"ca.pem": self._ca.cert_pem, "ca-key.pem": self._ca.key_pem}
        files["server-cert.pem"], files["server-key.pem"] = self._ca.issue(
            "dockerd", ip=self.ip, usage="server"
        )
        files["client-cert.pem"], files["client-key.pem"] = self._ca.issue("dockyard")
        for name, content in files.items():
            path = self.tls_dir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(content)

    def _server_ip(self) -> str | None:
        try:
            pem = self._read("server-cert.pem").encode()
            san = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            )
        except (OSError, ValueError, x509.ExtensionNotFound):
            return None
        return ", ".join(str(a) for a in san.value.get_values_for_type(x509.IPAddress))

    # ---- daemon and CLI

    def _listen_args(self) -> list[str]:
        return [
            f"--host={self.url}",
            "--tlsverify",
            f"--tlscacert={self.tls_dir / 'ca.pem'}",
            f"--tlscert={self.tls_dir / 'server-cert.pem'}",
            f"--tlskey={self.tls_dir / 'server-key.pem'}",
        ]

    def cli_args(self) -> list[str]:
        return [
            "-H",
            self.url,
            "--tlsverify",
            f"--tlscacert={self.tls_dir / 'ca.pem'}",
            f"--tlscert={self.tls_dir / 'client-cert.pem'}",
            f"--tlskey={self.tls_dir / 'client-key.pem'}",
        ]

    def _cli_env(self) -> dict[str, str]:
        # The engine is reached straight over the veth link, never through a proxy.
        proxies = {"http_proxy", "https_proxy", "all_proxy"}
        return {k: v for k, v in os.environ.items() if k.lower() not in proxies}

    def running(self) -> bool:
        # Without the link the address routes elsewhere: the CLI would wait, not fail.
        return self._link_up() and self.tls_dir.is_dir() and super().running()


class CertificateAuthority:
    """A throwaway CA (EC P-256) that issues server and client certificates as PEM."""

    def __init__(self, name: str = "Dockyard test CA", *, _key=None, _cert=None):
        self.key = _key or ec.generate_private_key(ec.SECP256R1())
        if _cert is None:
            now = _now()
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
            _cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(subject)
                .public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(_key_usage(cert_sign=True), critical=True)
                .add_extension(ski, critical=False)
                .sign(self.key, hashes.SHA256())
            )
        self.cert = _cert

    @classmethod
    def load(cls, cert_pem: str, key_pem: str, name: str = "") -> CertificateAuthority:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        return cls(name, _key=key, _cert=x509.load_pem_x509_certificate(cert_pem.encode()))

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return _key_pem(self.key)

    def issue(
        self,
        name: str,
        *,
        ip: str | None = None,
        usage: str = "client",
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[str, str]:
        """(certificate PEM, key PEM) for `name`; `usage` is "client" or "server";
        a server certificate names `ip` in its subjectAltName."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        eku = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if usage == "server"
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(hours=1))
            .not_valid_after(not_after or now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        if ip is not None:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_usage(cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SecondEngineError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_link_network() -> ipaddress.IPv4Network:
    """The first /30 of TLS_LINK_POOL that overlaps no address on this machine."""
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    used = [
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network
        for link in json.loads(out.stdout or "[]")
        for a in link.get("addr_info", [])
    ]
    for net in TLS_LINK_POOL.subnets(new_prefix=30):
        if not any(net.overlaps(u) for u in used):
            return net
    raise SecondEngineError(f"no free /30 left in {TLS_LINK_POOL}")


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
