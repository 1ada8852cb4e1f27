"""Docker engine clients: one cached client per host, errors translated.

Every call to docker-py goes through `engine(host)`, which turns the dozen ways a
call can fail (socket missing, connection refused, timeout, API error) into an
`EngineError` whose message an operator can read, and marks a host unreachable
when the engine cannot be reached at all.
"""

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager

import docker
import requests
from django.conf import settings
from django.utils import timezone

# A fixed API version avoids a version round-trip on every new client; 1.41 is
# Docker 20.10, the oldest engine we support (newer engines accept it).
API_VERSION = "1.41"

_clients = {}
_lock = threading.Lock()


class EngineError(Exception):
    """A Docker call failed; `str()` is a message fit for an operator."""

    def __init__(self, message, status_code=None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class HostUnreachable(EngineError):
    """The engine could not be reached at all."""


class NotFoundOnEngine(EngineError):
    """The engine answered 404 (no such container, image, …)."""


def _client_key(host):
    material = "|".join(
        [host.url, host.tls_ca_cert, host.tls_client_cert, host.tls_client_key_encrypted]
    )
    return (host.pk, hashlib.sha256(material.encode()).hexdigest(), str(host.tls_verify))


_tls_folders = {}


def _tls_config(host):
    if not host.uses_tls:
        return None
    # docker-py's TLSConfig wants file paths (read again on every new connection);
    # they live, private to this process, as long as the client, and go with it.
    folder = tempfile.mkdtemp(prefix=f"dockyard-tls-{host.pk}-")
    os.chmod(folder, 0o700)
    _tls_folders.setdefault(host.pk, []).append(folder)

    def write(name, content):
        path = os.path.join(folder, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        return path

    ca = write("ca.pem", host.tls_ca_cert) if host.tls_ca_cert else None
    cert = None
    if host.tls_client_cert:
        cert = (write("cert.pem", host.tls_client_cert), write("key.pem", host.tls_client_key))
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=host.tls_verify and bool(ca))


def _url(host):
    url = host.url
    # docker-py speaks https to a tcp:// URL only when given TLS; make that explicit.
    if url.startswith("tcp://") and host.uses_tls:
        url = "https://" + url[len("tcp://") :]
    return url


def client_for(host, timeout=None):
    """The cached docker-py client for a host (a new one if its settings changed)."""
    timeout = timeout or settings.DOCKER_TIMEOUT
    key = (*_client_key(host), timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            try:
                client = docker.DockerClient(
                    base_url=_url(host), version=API_VERSION, timeout=timeout, tls=_tls_config(host)
                )
            except docker.errors.DockerException as exc:
                raise HostUnreachable(f"Host {host.name}: cannot use {host.url}: {exc}") from exc
            _clients[key] = client
    return client


def forget_client(host):
    with _lock:
        for key in [k for k in _clients if k[0] == host.pk]:
            _clients.pop(key).close()
        for folder in _tls_folders.pop(host.pk, []):
            shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def _remove_tls_files():
    for folders in _tls_folders.values():
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def translate(host, exc):
    """Turn any docker-py / requests exception into an EngineError."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, docker.errors.NotFound):
        return NotFoundOnEngine(_explanation(exc), 404)
    if isinstance(exc, docker.errors.APIError):
        return EngineError(_explanation(exc), exc.status_code)
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | OSError):
        return HostUnreachable(f"Host {host.name} is unreachable ({host.url}): {_short(exc)}")
    if isinstance(exc, docker.errors.DockerException):
        return EngineError(f"Host {host.name}: {exc}")
    return EngineError(f"Host {host.name}: unexpected error: {exc!r}")


def _explanation(exc):
    text = exc.explanation
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or str(exc)).strip()


def _short(exc):
    # requests nests the real reason deep inside; the innermost one reads best.
    seen = exc
    while getattr(seen, "__context__", None) is not None and seen.__context__ is not seen:
        seen = seen.__context__
    text = str(seen) or exc.__class__.__name__
    if "Read timed out" in str(exc) or isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(seen, FileNotFoundError):
        return "socket not found"
    if isinstance(seen, ConnectionRefusedError):
        return "connection refused"
    return text[:200]


@contextmanager
def engine(host, timeout=None):
    """Yield the host's client; any failure leaves as EngineError.

    An unreachable engine marks the host unreachable in the DB, so every page
    that touches it can say so without calling the engine again.
    """
    try:
        yield client_for(host, timeout)
    except Exception as exc:
        err = translate(host, exc)
        if isinstance(err, HostUnreachable):
            mark_host(host, reachable=False, error=err.message)
        raise err from exc


def mark_host(host, reachable, error="", version=None, api_version=None):
    from .models import Host

    fields = {
        "state": Host.State.REACHABLE if reachable else Host.State.UNREACHABLE,
        "last_error": error,
        "last_checked": timezone.now(),
    }
    if version is not None:
        fields["engine_version"] = version
    if api_version is not None:
        fields["api_version"] = api_version
    Host.objects.filter(pk=host.pk).update(**fields)
    for name, value in fields.items():
        setattr(host, name, value)


def probe(host):
    """Ping the engine and record its state; returns `docker info` or raises EngineError."""
    with engine(host, timeout=settings.DOCKER_PING_TIMEOUT) as client:
        version = client.api.version()
        info = client.api.info()
    mark_host(
        host,
        reachable=True,
        version=version.get("Version", ""),
        api_version=version.get("ApiVersion", ""),
    )
    return info
