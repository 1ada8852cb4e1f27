"""Forwarded headers are believed only from the proxies DASHBOARD_TRUSTED_PROXIES names.

Without it a client can write any X-Forwarded-For it likes: the audit log and the
login throttle (django-axes) must still see the address it connected from. With it,
the address the proxy forwarded is the client's.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import RequestFactory, override_settings
from django.urls import reverse

from dashboard.audit import client_ip
from dashboard.models import AuditEntry

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "proxy-test-pass-123!"
PEER = "127.0.0.1"  # what the test client connects from
FORGED = "203.0.113.66"
CLIENT = "198.51.100.23"

BY_ADDRESS = override_settings(
    TRUSTED_PROXY_COUNT=0,
    TRUSTED_PROXIES=("127.0.0.0/8", "10.9.0.0/16"),
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
BY_COUNT = override_settings(
    TRUSTED_PROXY_COUNT=1,
    TRUSTED_PROXIES=(),
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)


def request(remote=PEER, xff=None, **meta):
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", REMOTE_ADDR=remote, **meta)


# --- client_ip ---------------------------------------------------------------------


def test_without_trusted_proxies_forwarded_for_is_ignored():
    assert settings.TRUSTED_PROXY_COUNT == 0 and settings.TRUSTED_PROXIES == ()
    assert client_ip(request(xff=FORGED)) == PEER
    assert client_ip(request(HTTP_X_REAL_IP=FORGED, HTTP_FORWARDED=f"for={FORGED}")) == PEER
    assert client_ip(request(remote="")) is None


@BY_ADDRESS
@pytest.mark.parametrize(
    "remote, xff, expected",
    [
        (PEER, CLIENT, CLIENT),  # one trusted proxy
        (PEER, f"{FORGED}, {CLIENT}", CLIENT),  # the client's own prefix is not believed
        (PEER, f"{FORGED}, {CLIENT}, 10.9.1.2", CLIENT),  # two trusted proxies
        (PEER, "10.9.1.2", "10.9.1.2"),  # everyone on the chain trusted: the leftmost
        ("192.0.2.50", CLIENT, "192.0.2.50"),  # not from a trusted proxy: header ignored
        (PEER, "", PEER),
        (PEER, "garbage, , not-an-ip", PEER),
        ("::ffff:127.0.0.1", CLIENT, CLIENT),
    ],
)
def test_trusted_proxies_by_address(remote, xff, expected):
    assert client_ip(request(remote=remote, xff=xff)) == expected


@BY_COUNT
@pytest.mark.parametrize(
    "xff, expected",
    [
        (CLIENT, CLIENT),
        (f"{FORGED}, {CLIENT}", CLIENT),  # one proxy: the address it appended
        (None, PEER),
    ],
)
def test_trusted_proxies_by_count(xff, expected):
    assert client_ip(request(xff=xff)) == expected


@override_settings(TRUSTED_PROXY_COUNT=2, TRUSTED_PROXIES=())
def test_two_proxies_by_count():
    assert client_ip(request(xff=f"{FORGED}, {CLIENT}, 10.0.0.7")) == CLIENT
    assert client_ip(request(xff=CLIENT)) == CLIENT


# --- the audit log -----------------------------------------------------------------


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser(username="root", password=PASSWORD)


def create_team(client, name, **headers):
    response = client.post(reverse("team_list"), {"name": name, "description": ""}, **headers)
    assert response.status_code == 302, response.content[:500]
    return AuditEntry.objects.filter(target_name=name).latest("pk")


def test_a_forged_forwarded_for_does_not_change_the_audit_address(client, admin):
    client.force_login(admin)
    entry = create_team(client, "forged", HTTP_X_FORWARDED_FOR=FORGED)
    assert entry.source_ip == PEER


@BY_ADDRESS
def test_behind_a_trusted_proxy_the_audit_address_is_the_forwarded_one(client, admin):
    client.force_login(admin)
    entry = create_team(client, "proxied", HTTP_X_FORWARDED_FOR=f"{FORGED}, {CLIENT}")
    assert entry.source_ip == CLIENT


# --- login throttling (django-axes) --------------------------------------------------


@pytest.fixture
def victim(db):
    return get_user_model().objects.create_user(username="victim", password=PASSWORD)


def fail_login(client, xff):
    return client.post(
        reverse("login"),
        {"username": "victim", "password": "wrong"},
        HTTP_X_FORWARDED_FOR=xff,
    )


def test_a_forged_forwarded_for_does_not_dodge_the_lockout(client, victim):
    # A fresh invented address on every try: all count against the real one.
    statuses = [fail_login(client, f"203.0.113.{i}").status_code for i in range(10, 13)]
    assert statuses == [200, 200, 429]
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {PEER}
    response = client.post(
        reverse("login"),
        {"username": "victim", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.99",
    )
    assert response.status_code == 429


@BY_ADDRESS
def test_behind_a_trusted_proxy_the_lockout_key_is_the_forwarded_address(client, victim):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        fail_login(client, f"{FORGED}, {CLIENT}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {CLIENT}
    # Locked from that client; another client behind the same proxy still gets in.
    assert fail_login(client, CLIENT).status_code == 429
    response = client.post(
        reverse("login"),
        {"username": "victim", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.24",
    )
    assert response.status_code == 302


# --- X-Forwarded-Proto ---------------------------------------------------------------


def test_without_trusted_proxies_forwarded_proto_is_ignored(client, db):
    response = client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert not response.cookies[settings.CSRF_COOKIE_NAME]["secure"]


@BY_ADDRESS
def test_forwarded_proto_from_a_trusted_proxy_is_believed(client, db):
    response = client.get(reverse("login"), HTTP_X_FORWARDED_PROTO="https")
    assert response.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True


@BY_ADDRESS
def test_forwarded_proto_from_elsewhere_is_dropped(client, db):
    response = client.get(
        reverse("login"), HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="192.0.2.50"
    )
    assert not response.cookies[settings.CSRF_COOKIE_NAME]["secure"]


# --- the setting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", "0 () None"),
        ("2", "2 () ('HTTP_X_FORWARDED_PROTO', 'https')"),
        (
            "10.0.0.5, 10.1.0.0/16 ::1",
            "0 ('10.0.0.5/32', '10.1.0.0/16', '::1/128') ('HTTP_X_FORWARDED_PROTO', 'https')",
        ),
    ],
)
def test_the_setting_is_a_count_or_addresses(tmp_path, value, expected):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_GENERATE_KEYS": "true",
        "DASHBOARD_TRUSTED_PROXIES": value,
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.TRUSTED_PROXY_COUNT, s.TRUSTED_PROXIES, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_axes_asks_the_same_function():
    assert settings.AXES_CLIENT_IP_CALLABLE == "dashboard.audit.client_ip"
