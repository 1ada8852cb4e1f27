"""Docker engine clients: one cached client per host, errors translated.

Every call to docker-py goes through `engine(host)`, which turns the dozen ways a
call can fail (socket missing, connection refused, timeout, TLS refused, API error)
into an `EngineError` whose message an operator can read, and marks a host
unreachable when the engine cannot be reached at all.

TLS: a tcp:// engine is spoken to over TLS, its certificate verified against the CA
the host gives or, without one, this machine's trust store; the environment
(REQUESTS_CA_BUNDLE, proxies) never changes that. Plain tcp://, a tcp:// engine
without a client certificate and an unverified certificate are refused unless the
host is marked insecure.
"""

import atexit
import hashlib
import http.client
import os
import shutil
import ssl
import threading
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime

import docker
import requests
import urllib3
from cryptography import x509
from django.conf import settings
from django.utils import timezone

from . import scratch

# Only hosts an admin marked insecure skip verification; the pages say so in red, and
# the warning urllib3 would log on every call adds nothing to that.
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)

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


class AnswerLost(HostUnreachable):
    """The request went out but no answer came back (the engine died, restarted or
    dropped the connection mid-request): whether it was done is unknown."""


class NotFoundOnEngine(EngineError):
    """The engine answered 404 (no such container, image, …)."""


class InsecureRefused(HostUnreachable):
    """A tcp:// host without full TLS that is not marked insecure: never connected to."""


def _client_key(host):
    material = "|".join(
        [host.url, host.tls_ca_cert, host.tls_client_cert, host.tls_client_key_encrypted]
    )
    digest = hashlib.sha256(material.encode()).hexdigest()
    return (host.pk, digest, str(host.tls_verify), str(host.insecure))


def is_network(host):
    return host.url.startswith("tcp://")


def _insecure(host):
    """(why, what to do) when the connection to a tcp:// host would be open to others;
    None when it is protected: the engine's certificate verified and a client
    certificate presented. Anything less needs `insecure`."""
    if not is_network(host):
        return None
    if not host.uses_tls:
        return (
            "tcp:// without TLS lets anyone who can reach this port control the engine",
            "add the engine's CA and a client certificate with its key",
        )
    if not host.tls_verify:
        return (
            "without verifying the engine's certificate anyone on the network path "
            "could pose as the engine",
            "turn verification on (with the CA that signed the engine's certificate)",
        )
    if not host.tls_client_cert:
        return (
            "an engine that lets the dashboard in without a client certificate lets "
            "anyone who can reach this port in",
            "add a client certificate with its key",
        )
    return None


def _refuse_insecure(host):
    problem = _insecure(host)
    if problem and not host.insecure:
        why, fix = problem
        raise InsecureRefused(
            f"Host {host.name} ({host.url}): not connected, because {why}; {fix}, "
            "or mark the host insecure to accept that."
        )


_tls_folders = {}


def _system_ca():
    """This machine's trust store (OpenSSL's default file or folder)."""
    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.capath):
        if path and os.path.exists(path):
            return path
    return True  # requests' own bundle (certifi): still verified, never "off"


def _tls_config(host):
    if not host.uses_tls or not is_network(host):
        return None
    # docker-py's TLSConfig wants file paths (read again on every new connection);
    # they live, private to this process, as long as the client, and go with it.
    folder = scratch.private_dir("dockyard-tls-")  # a crashed process's: removed by the next
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
    if not host.tls_verify:
        return docker.tls.TLSConfig(client_cert=cert, verify=False)  # insecure hosts only
    # No CA given: the system's trust store, never "no verification".
    verify = ca or _system_ca()
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=verify)


def _url(host):
    url = host.url
    # docker-py speaks https to a tcp:// URL only when given TLS; make that explicit.
    if url.startswith("tcp://") and host.uses_tls:
        url = "https://" + url[len("tcp://") :]
    return url


def client_for(host, timeout=None):
    """The cached docker-py client for a host (a new one if its settings changed)."""
    _refuse_insecure(host)  # before the cache: a client made while it was allowed stays unused
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
            # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA given
            # above (and proxies from the environment carry engine traffic): neither.
            client.api.trust_env = False
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
    from .jobs import JobFailed  # here: jobs imports this module

    if isinstance(exc, JobFailed):
        # A handler's own refusal raised inside `engine()`: its words, not "unexpected".
        return EngineError(str(exc))
    if isinstance(exc, docker.errors.NotFound):
        return NotFoundOnEngine(_explanation(exc), 404)
    if isinstance(exc, docker.errors.APIError):
        if is_network(host) and "HTTP request to an HTTPS server" in _explanation(exc):
            return HostUnreachable(
                f"Host {host.name} ({host.url}): the engine speaks TLS on this port; give the "
                "host the engine's CA and a client certificate with its key."
            )
        return EngineError(_explanation(exc), exc.status_code)
    lost = _answer_lost(exc)
    if lost or isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | OSError
    ):
        tls = _tls_problem(host, exc)
        if tls:
            return HostUnreachable(f"Host {host.name} ({host.url}): {tls}")
        if lost:
            return AnswerLost(
                f"Host {host.name} stopped answering during the request ({_short(exc)}); "
                "whether it was done is unknown."
            )
        return HostUnreachable(f"Host {host.name} is unreachable ({host.url}): {_short(exc)}")
    if isinstance(exc, docker.errors.DockerException):
        return EngineError(f"Host {host.name}: {exc}")
    return EngineError(f"Host {host.name}: unexpected error: {exc!r}")


def _answer_lost(exc):
    """Was the request sent, with the answer lost? A read timeout, or the connection
    closed or reset after connecting; never a refused connection, a missing socket, a
    connect timeout or a TLS failure (the engine was never asked)."""
    if not isinstance(exc, requests.exceptions.RequestException | urllib3.exceptions.HTTPError):
        return False
    causes = _causes(exc)
    if any(
        isinstance(c, ConnectionRefusedError | FileNotFoundError | ssl.SSLError)
        or isinstance(
            c, requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError
        )
        for c in causes
    ):
        return False
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(
        isinstance(c, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
        or isinstance(c, http.client.IncompleteRead | urllib3.exceptions.ProtocolError)
        for c in causes
    )


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


# OpenSSL's verify codes (X509_V_ERR_*) for "no CA we trust signed this".
_UNTRUSTED = {2, 18, 19, 20, 21, 27}
# Alerts an engine sends when it does not accept the client certificate (or its absence).
_CLIENT_REFUSED = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
}


def _causes(exc):
    """Every exception inside `exc`: requests wraps urllib3's MaxRetryError (in args),
    which holds urllib3's SSLError (`reason`), which holds ssl's error (in args)."""
    todo, seen = [exc], []
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += list(getattr(current, "args", ()))
    return seen


def _tls_problem(host, exc):
    """What went wrong with TLS, as advice an operator can follow; "" if TLS is not why."""
    if not (is_network(host) and host.uses_tls):
        return ""
    causes = _causes(exc)
    ssl_error = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if isinstance(ssl_error, ssl.SSLCertVerificationError):
        return _server_refused(host, ssl_error)
    reason = getattr(ssl_error, "reason", None) or ""
    # A refused client certificate arrives as an alert, or (TLS 1.3: the engine says no
    # after the handshake, while our request is in flight) as a connection closed mid-TLS.
    if reason in _CLIENT_REFUSED or isinstance(ssl_error, ssl.SSLEOFError):
        return _client_refused(host)
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return (
            "the engine does not speak TLS on this port; check the port, or remove the "
            "TLS certificates if it really is a plain tcp:// engine (insecure)."
        )
    if reason == "KEY_VALUES_MISMATCH":
        return "the client key does not belong to the client certificate; paste the matching pair."
    if reason in ("PEM_LIB", "NO_START_LINE", "NO_CERTIFICATE_OR_CRL_FOUND"):
        return "the TLS CA, certificate or key could not be read; paste them again as PEM text."
    if ssl_error is not None:
        return f"TLS failed: {ssl_error.reason or ssl_error}."
    return ""


def _server_refused(host, err):
    code = err.verify_code
    if code == 10:
        return (
            "the engine's certificate has expired (or this machine's clock is wrong); "
            "renew the certificate on the engine."
        )
    if code == 9:
        return (
            "the engine's certificate is not valid yet; check the clocks of the engine "
            "and of this machine."
        )
    if code in (62, 64):
        where = host.url[len("tcp://") :].rpartition(":")[0]
        return (
            f"the engine's certificate is not made out for {where}; connect by a name or "
            "address its certificate lists (subjectAltName), or reissue it for this one."
        )
    if code in _UNTRUSTED:
        if host.tls_ca_cert:
            return (
                "the engine's certificate is not signed by the CA you gave; paste the CA "
                "certificate that signed the engine's certificate."
            )
        return (
            "the engine's certificate is not trusted: no CA was given, so it was checked "
            "against this machine's trusted CAs, and none of them signed it; paste the CA "
            "certificate that signed it."
        )
    return f"the engine's certificate was refused: {err.verify_message}."


def _client_refused(host):
    if not host.tls_client_cert:
        return (
            "the engine demands a client certificate; add a client certificate and key "
            "signed by a CA the engine trusts."
        )
    try:
        cert = x509.load_pem_x509_certificate(host.tls_client_cert.encode())
    except ValueError:
        return "the client certificate could not be read; paste it again as PEM text."
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        day = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"the client certificate expired on {day}; issue a new one and paste it with its key."
        )
    if cert.not_valid_before_utc > now:
        return (
            "the client certificate is not valid yet; check the clocks of the engine "
            "and of this machine."
        )
    return (
        "the engine refused the client certificate; it must be signed by a CA the engine "
        "trusts (its --tlscacert)."
    )


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
