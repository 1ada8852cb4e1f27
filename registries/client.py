"""A small client for the registry HTTP API v2 (Distribution), built on requests.

It speaks both ways registries ask for credentials: HTTP basic (Distribution's
htpasswd, Harbor with basic) and the bearer-token flow (Docker Hub, GitLab,
Harbor, Distribution with `auth.token`): a 401 with `WWW-Authenticate: Bearer
realm=…,service=…,scope=…` sends us to the realm for a token, which is cached
per scope and used until it expires.

Errors are one sentence an operator can act on, typed by what went wrong:
unauthorized, denied, unreachable, TLS, not found, unsupported (e.g. deletes
turned off), bad response. No error message carries the password: URLs never
hold credentials (the address is refused with user info), and response bodies
are reduced to the registry's own error codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from .manifests import (
    ACCEPT,
    DIGEST_RE,
    IMAGE_MANIFESTS,
    INDEXES,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_PLATFORMS,
    SCHEMA1,
    Page,
    Platform,
    TagInfo,
    non_negative_int,
    parse_time,
    schema1_created,
    valid_repository,
    valid_tag,
)

log = logging.getLogger(__name__)


class RegistryError(Exception):
    """What went wrong talking to a registry; `kind` says which, `str()` says it to a person."""

    UNAUTHORIZED = "unauthorized"
    DENIED = "denied"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    NOT_FOUND = "not found"
    UNSUPPORTED = "unsupported"
    BAD_RESPONSE = "bad response"

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self):
        return self.message


def _parse_challenge(header):
    """`Bearer realm="…",service="…"` → ("bearer", {realm:…, service:…})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    """Talks to one registry with its stored credentials. Use as a context manager."""

    def __init__(self, registry, *, timeout=None, budget=None):
        """`timeout`: (connect, read) seconds per request; `budget`: seconds for all the
        requests of this client together (a page), after which each fails at once."""
        self.registry = registry
        self.budget = budget
        self._deadline = time.monotonic() + budget if budget else None
        self.base = registry.api_url.rstrip("/")
        self.username = registry.username
        self._password = registry.password
        connect = getattr(settings, "REGISTRY_CONNECT_TIMEOUT", 3)
        read = getattr(settings, "REGISTRY_READ_TIMEOUT", 10)
        self.timeout = timeout or (connect, read)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "dockyard-registry-client"
        self._ca_file = None
        self.verify = True
        if not registry.tls_verify:
            self.verify = False
        elif registry.ca_cert:
            fd, path = tempfile.mkstemp(prefix="dockyard-registry-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as f:
                f.write(registry.ca_cert)
            self._ca_file = path
            self.verify = path
        self._basic = False
        self._tokens = {}  # scope → (token, expires at)
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.session.close()
        if self._ca_file:
            try:
                os.unlink(self._ca_file)
            except FileNotFoundError:
                pass
            self._ca_file = None

    # ------------------------------------------------------------ transport

    @sensitive_variables("auth", "headers")  # DEBUG tracebacks show locals
    def _send(self, method, url, *, headers=None, auth=None, params=None, stream=False):
        # `verify` is given per request: a session-level value would be overridden by
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment.
        timeout = self.timeout
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise RegistryError(
                    RegistryError.UNREACHABLE,
                    f"Registry {self.registry.address} is too slow: it did not answer "
                    f"everything within {self.budget:g} s.",
                )
            timeout = (min(timeout[0], left), min(timeout[1], left))
        try:
            return self.session.request(
                method,
                url,
                headers=headers,
                auth=auth,
                params=params,
                timeout=timeout,
                verify=self.verify,
                allow_redirects=True,
                stream=stream,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryError(RegistryError.TLS, _tls_message(self.registry, exc)) from None
        except requests.exceptions.Timeout:
            raise RegistryError(
                RegistryError.UNREACHABLE,
                f"Registry {self.registry.address} is unreachable: no answer in time.",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise RegistryError(
                RegistryError.UNREACHABLE,
                f"Registry {self.registry.address} is unreachable: {_connection_reason(exc)}.",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(
                RegistryError.UNREACHABLE,
                f"Registry {self.registry.address} could not be asked: {type(exc).__name__}.",
            ) from None

    def _credentials(self):
        if self.username or self._password:
            return (self.username, self._password)
        return None

    @sensitive_variables("auth", "headers", "token")
    def request(self, method, path, *, scope="", headers=None, params=None, stream=False):
        """One API call with credentials: basic if the registry asked for it, else a token
        for `scope`; a 401 is answered once with what its challenge asks for."""
        url = f"{self.base}{path}"
        headers = dict(headers or {})
        auth = self._credentials() if self._basic else None
        token = self._cached_token(scope)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        resp = self._send(method, url, headers=headers, auth=auth, params=params, stream=stream)
        if resp.status_code != 401:
            return resp
        scheme, challenge = _parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        resp.close()
        if scheme == "basic" and not self._basic and self._credentials():
            self._basic = True
            auth = self._credentials()
        elif scheme == "bearer" and challenge.get("realm"):
            token = self._fetch_token(challenge, scope or challenge.get("scope", ""))
            headers["Authorization"] = f"Bearer {token}"
            auth = None
        else:
            raise self._unauthorized()
        resp = self._send(method, url, headers=headers, auth=auth, params=params, stream=stream)
        if resp.status_code == 401:
            resp.close()
            raise self._unauthorized()
        return resp

    def _unauthorized(self):
        who = f"user {self.username!r}" if self.username else "anonymous access"
        return RegistryError(
            RegistryError.UNAUTHORIZED,
            f"Unauthorized: registry {self.registry.address} refused {who} "
            "(wrong user name, password or token?).",
        )

    def _cached_token(self, scope):
        with self._lock:
            token, until = self._tokens.get(scope, (None, 0))
        return token if token and until > time.monotonic() else None

    def _fetch_token(self, challenge, scope):
        realm = challenge["realm"]
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(
                RegistryError.BAD_RESPONSE,
                f"Registry {self.registry.address} sent a token address that is not a URL.",
            )
        if parts.scheme == "http" and self.registry.scheme == "https":
            # Never send the password in clear because the registry said so.
            raise RegistryError(
                RegistryError.BAD_RESPONSE,
                f"Registry {self.registry.address} asks for its token over plain HTTP; refused.",
            )
        params = {}
        if challenge.get("service"):
            params["service"] = challenge["service"]
        if scope:
            params["scope"] = scope
        resp = self._send("GET", realm, auth=self._credentials(), params=params)
        if resp.status_code in (401, 403):
            resp.close()
            raise self._unauthorized()
        if resp.status_code != 200:
            resp.close()
            raise RegistryError(
                RegistryError.BAD_RESPONSE,
                f"The token service of {self.registry.address} answered HTTP {resp.status_code}.",
            )
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
            expires = int(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, expires = None, 0
        if not isinstance(token, str) or not token:
            raise RegistryError(
                RegistryError.BAD_RESPONSE,
                f"The token service of {self.registry.address} gave no token.",
            )
        with self._lock:
            # Renew a little early; never trust a lifetime under 10 s or over an hour.
            self._tokens[scope] = (token, time.monotonic() + min(max(expires, 10), 3600) - 5)
        return token

    def _check(self, resp, what):
        """Raise a typed error for a non-2xx answer (the registry's error codes kept)."""
        if resp.status_code < 300:
            return resp
        codes = _error_codes(resp)
        resp.close()
        status = resp.status_code
        if status == 403 or "DENIED" in codes:
            raise RegistryError(
                RegistryError.DENIED,
                f"Denied: user {self.username or '(anonymous)'} may not {what} "
                f"on {self.registry.address}.",
            )
        if status == 404 or codes & {"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"}:
            raise RegistryError(RegistryError.NOT_FOUND, f"Not found: {what}.")
        if status == 405 or "UNSUPPORTED" in codes:
            raise RegistryError(
                RegistryError.UNSUPPORTED,
                f"Registry {self.registry.address} does not allow this: {what} "
                "(deletes are turned off on it).",
            )
        code = f" ({', '.join(sorted(codes))})" if codes else ""
        raise RegistryError(
            RegistryError.BAD_RESPONSE,
            f"Registry {self.registry.address} answered HTTP {status}{code} to: {what}.",
        )

    def _json(self, resp, what, limit=MAX_MANIFEST_BYTES):
        # Read at most `limit` bytes: a registry is not trusted to send a sane amount.
        chunks, total = [], 0
        try:
            for chunk in resp.iter_content(64 * 1024):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise RegistryError(RegistryError.BAD_RESPONSE, f"Answer too large: {what}.")
        except requests.exceptions.RequestException:
            raise RegistryError(
                RegistryError.UNREACHABLE,
                f"Registry {self.registry.address} broke off its answer: {what}.",
            ) from None
        finally:
            resp.close()
        data = b"".join(chunks)
        try:
            return data, json.loads(data)
        except ValueError:
            raise RegistryError(
                RegistryError.BAD_RESPONSE, f"Registry answered something that is not JSON: {what}."
            ) from None

    # ------------------------------------------------------------ API

    def check_login(self):
        """Log in as the stored user: GET /v2/ with the credentials. Raises RegistryError."""
        resp = self.request("GET", "/v2/", scope="registry:catalog:*")
        self._check(resp, "log in")
        resp.close()
        if self.username and not self._basic and not self._tokens:
            # The registry let anonymous in: the stored user name was never checked.
            return f"Registry {self.registry.address} answers without asking for a login."
        return f"Logged in to {self.registry.address} as {self.username or 'anonymous'}."

    def catalog(self, n=50, last=None):
        """One page of repository names (`n`, `last` as the API takes them)."""
        params = {"n": n}
        if last:
            params["last"] = last
        resp = self.request("GET", "/v2/_catalog", scope="registry:catalog:*", params=params)
        try:
            self._check(resp, "list the repositories")
        except RegistryError as exc:
            if exc.kind not in (
                RegistryError.NOT_FOUND,
                RegistryError.UNSUPPORTED,
                RegistryError.DENIED,
            ):
                raise
            # Docker Hub, GitLab and Harbor robots keep their catalog to themselves.
            raise RegistryError(
                exc.kind,
                f"Registry {self.registry.address} does not list its repositories to this "
                "user; open a repository by its name.",
            ) from None
        link = resp.links.get("next", {}).get("url")
        _raw, body = self._json(resp, "repository list")
        names = body.get("repositories") if isinstance(body, dict) else None
        if not isinstance(names, list):
            raise RegistryError(RegistryError.BAD_RESPONSE, "The repository list is malformed.")
        names = [str(x) for x in names]
        return Page(names, _next_last(link, names, n))

    def tags(self, repository, n=20, last=None):
        _require_name(repository)
        params = {"n": n}
        if last:
            params["last"] = last
        resp = self.request(
            "GET", f"/v2/{repository}/tags/list", scope=_pull(repository), params=params
        )
        self._check(resp, f"repository {repository}")
        link = resp.links.get("next", {}).get("url")
        _raw, body = self._json(resp, "tag list")
        tags = body.get("tags") if isinstance(body, dict) else None
        if tags is None:
            tags = []  # Distribution says null when the last tag was deleted
        if not isinstance(tags, list):
            raise RegistryError(RegistryError.BAD_RESPONSE, "The tag list is malformed.")
        tags = [str(t) for t in tags]
        if len(tags) > n:
            # Distribution 2.8 ignores `n` and `last` for tags: page them here.
            tags = sorted(t for t in tags if not last or t > last)
            return Page(tags[:n], tags[n - 1] if len(tags) > n else None)
        return Page(tags, _next_last(link, tags, n))

    def manifest(self, repository, reference):
        """(digest, media type, parsed manifest) of a tag or digest."""
        _require_name(repository, reference)
        resp = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull(repository),
            headers={"Accept": ACCEPT},
            stream=True,
        )
        self._check(resp, f"{repository}:{reference}")
        header_digest = resp.headers.get("Docker-Content-Digest", "")
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        raw, body = self._json(resp, f"manifest of {repository}:{reference}")
        if not isinstance(body, dict):
            raise RegistryError(RegistryError.BAD_RESPONSE, "The manifest is malformed.")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if DIGEST_RE.match(header_digest) and header_digest != digest:
            # Schema 1 manifests are signed: the registry digests them without the signature.
            digest = header_digest
        media_type = body.get("mediaType") or content_type
        if not body.get("mediaType") and body.get("schemaVersion") == 1:
            media_type = SCHEMA1[0]
        return digest, media_type, body

    def head_digest(self, repository, reference):
        """The digest the registry gives `reference` now (for delete: a tag may have moved)."""
        _require_name(repository, reference)
        resp = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=_pull(repository),
            headers={"Accept": ACCEPT},
        )
        self._check(resp, f"{repository}:{reference}")
        resp.close()
        digest = resp.headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.match(digest):
            return digest
        digest, _mt, _body = self.manifest(repository, reference)
        return digest

    def config(self, repository, digest):
        _require_name(repository, digest)
        resp = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=_pull(repository), stream=True
        )
        self._check(resp, f"the image configuration of {repository}")
        _raw, body = self._json(resp, "image configuration", limit=MAX_CONFIG_BYTES)
        return body if isinstance(body, dict) else {}

    def tag_info(self, repository, tag):
        """Digest, size and created date of one tag (an index: each platform's too)."""
        info = TagInfo(tag)
        try:
            info.digest, info.media_type, body = self.manifest(repository, tag)
            if info.media_type in INDEXES:
                for child in (body.get("manifests") or [])[:MAX_PLATFORMS]:
                    info.platforms.append(self._platform(repository, child))
                sizes = [p.size for p in info.platforms if p.size is not None]
                info.size = sum(sizes) if sizes else None
                dates = [p.created for p in info.platforms if p.created]
                info.created = max(dates) if dates else None
            elif info.media_type in IMAGE_MANIFESTS:
                info.size, info.created = self._image_size_and_created(repository, body)
            elif info.media_type in SCHEMA1:
                info.created = schema1_created(body)
        except RegistryError as exc:
            info.error = exc.message
        return info

    def _platform(self, repository, child):
        if not isinstance(child, dict):
            return Platform()
        plat = child.get("platform") if isinstance(child.get("platform"), dict) else {}
        p = Platform(
            os=str(plat.get("os") or ""),
            architecture=str(plat.get("architecture") or ""),
            variant=str(plat.get("variant") or ""),
            digest=str(child.get("digest") or ""),
        )
        if DIGEST_RE.match(p.digest):
            _d, media_type, body = self.manifest(repository, p.digest)
            if media_type in IMAGE_MANIFESTS:
                p.size, p.created = self._image_size_and_created(repository, body)
        return p

    def _image_size_and_created(self, repository, manifest):
        config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
        layers = manifest.get("layers") if isinstance(manifest.get("layers"), list) else []
        size = non_negative_int(config.get("size")) + sum(
            non_negative_int(x.get("size")) for x in layers if isinstance(x, dict)
        )
        created = None
        digest = str(config.get("digest") or "")
        if DIGEST_RE.match(digest):
            created = parse_time(self.config(repository, digest).get("created"))
        return size, created

    def delete_manifest(self, repository, digest):
        """Delete a manifest by digest: every tag pointing at it goes with it."""
        _require_name(repository, digest)
        if not DIGEST_RE.match(digest):
            raise RegistryError(RegistryError.NOT_FOUND, "Not found: deletes take a digest.")
        resp = self.request(
            "DELETE", f"/v2/{repository}/manifests/{digest}", scope=_push_delete(repository)
        )
        self._check(resp, f"delete {repository}@{digest}")
        resp.close()


def _pull(repository):
    return f"repository:{repository}:pull"


def _push_delete(repository):
    # Distribution wants "delete"; registries that predate it (and Harbor) want "*".
    return f"repository:{repository}:pull,push,delete"


def _next_last(link, items, n):
    """The `last` of the next page: from the Link header, else the last item of a full page."""
    if link:
        values = parse_qs(urlsplit(link).query).get("last")
        if values:
            return values[0]
        return items[-1] if items else None
    return None


def _error_codes(resp):
    try:
        body = resp.json()
        return {str(e.get("code")) for e in body.get("errors", []) if isinstance(e, dict)}
    except (ValueError, AttributeError, TypeError):
        return set()


def _connection_reason(exc):
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host name"),
        ("Temporary failure in name resolution", "host name not resolved"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("RemoteDisconnected", "it closed the connection"),
        ("Connection reset", "connection reset"),
    ):
        if needle in text:
            return reason
    return "no connection"


def _tls_message(registry, exc):
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        if "Hostname mismatch" in text or "doesn't match" in text:
            why = "its certificate does not name this address"
        elif "expired" in text:
            why = "its certificate has expired"
        elif "self-signed" in text or "unable to get local issuer" in text:
            why = "its certificate is not signed by a CA we trust (give the registry's CA)"
        else:
            why = "its certificate could not be verified"
    elif "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        why = "it does not speak TLS here (try http:// for a plain-HTTP registry)"
    else:
        why = "the TLS handshake failed"
    return f"TLS error with registry {registry.address}: {why}."


def _require_name(repository, reference=None):
    # Names go into URL paths: only what the grammar allows, so nothing can escape /v2/.
    if not valid_repository(repository):
        raise RegistryError(RegistryError.NOT_FOUND, "Not found: no such repository name.")
    if reference is not None and not (valid_tag(reference) or DIGEST_RE.match(reference)):
        raise RegistryError(RegistryError.NOT_FOUND, "Not found: no such tag or digest.")
