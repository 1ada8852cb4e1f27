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

import base64
import ctypes
import datetime
import http.server
import json
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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
        token_server: TokenServer | None = None,
    ):
        self.username = username
        self.password = password or "pw-" + secrets.token_urlsafe(12)
        self.delete_enabled = delete_enabled
        self.auth = auth
        self.token_server = token_server
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
        if self.token_server is not None:
            self.token_server.write_cert(self.dir / "token.crt")
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token_server.realm}",
                f"    service: {self.token_server.service}",
                f"    issuer: {self.token_server.issuer}",
                f"    rootcertbundle: {self.dir / 'token.crt'}",
            ]
        elif self.auth:
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A bearer-token service for a registry (`auth.token`), as Docker Hub or GitLab run.

    It checks HTTP basic credentials and hands out an ES256 JWT granting what the
    client asked for; the registry trusts it through the certificate in the token's
    `x5c` header, which is also the registry's `rootcertbundle`. Tokens it issued
    are counted in `issued`, so a test can tell the bearer flow was used.
    """

    __test__ = False
    service = "dockyard-test-registry"
    issuer = "dockyard-test-token-issuer"

    def __init__(self, username: str, password: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.username, self.password = username, password
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.issued = 0
        self.refused = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server._answer(self)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def write_cert(self, path: Path):
        from cryptography.hazmat.primitives import serialization

        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, request):
        from urllib.parse import parse_qs, urlsplit

        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if not secrets.compare_digest(auth, expected):
            self.refused += 1
            request.send_response(401)
            request.end_headers()
            return
        query = parse_qs(urlsplit(request.path).query)
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind and name:
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
        body = json.dumps({"token": self._token(access), "expires_in": 300}).encode()
        self.issued += 1
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _token(self, access) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": self.username,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der_sig = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der_sig)  # JWS wants r || s, not DER
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
