"""`make run`'s defaults are safe: DEBUG off, plain error pages, generated keys kept
private and stable, production refusing placeholder or missing keys, and a login that
works over plain HTTP on loopback.

Settings are read once per process, so what depends on the environment runs
`manage.py` in a subprocess with an environment built from nothing.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.decorators import login_not_required
from django.test import Client
from django.urls import path, reverse

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "plain-http-pass-123!"
SHOW_KEYS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.SECRET_KEY, s.FERNET_KEY)"
)


def base_env(data_dir, **extra):
    """Nothing inherited that could change the outcome (no REDIS_URL, keys or DEBUG)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DASHBOARD_DATA_DIR": str(data_dir),
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def python(env, code):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refusal(result):
    """The one sentence a refused start ends with (after Python's traceback)."""
    assert result.returncode != 0, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    prefix = "django.core.exceptions.ImproperlyConfigured: "
    assert last.startswith(prefix), result.stderr[-2000:]
    return last[len(prefix) :]


def env_example(name):
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in .env.example")


# --- DEBUG -----------------------------------------------------------------------


def test_debug_is_off_by_default(tmp_path):
    result = python(base_env(tmp_path, DASHBOARD_GENERATE_KEYS="true"), SHOW_KEYS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


@pytest.mark.parametrize("value, expected", [("1", "True"), ("true", "True"), ("0", "False")])
def test_debug_only_when_asked(tmp_path, value, expected):
    env = base_env(tmp_path, DASHBOARD_DEBUG=value, DASHBOARD_GENERATE_KEYS="true")
    result = python(env, SHOW_KEYS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == expected


# --- error pages -----------------------------------------------------------------


@pytest.mark.django_db
def test_404_for_an_anonymous_visitor_lists_no_url_patterns(client):
    assert settings.DEBUG is False
    response = client.get("/no-such-page/at-all/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found (404)" in body
    for leak in ("URLconf", "accounts/login", "hosts/", "Django tried", "no-such-page"):
        assert leak not in body


def _boom(request):
    raise RuntimeError("secret-detail-from-the-view")


# A test-only URL (this module is the URLconf of the test below), never in production.
urlpatterns = [path("boom/", login_not_required(_boom))]


@pytest.mark.urls(__name__)
def test_500_shows_no_traceback(db):
    assert settings.DEBUG is False
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Server error (500)" in body
    for leak in ("Traceback", "secret-detail-from-the-view", "RuntimeError", "_boom"):
        assert leak not in body


@pytest.mark.parametrize("code", ["400", "403", "404", "500"])
def test_error_pages_stand_alone(code):
    # Nothing that could fail while rendering an error: no base template, no tags.
    text = (ROOT / "templates" / f"{code}.html").read_text()
    assert "{% extends" not in text and "{% include" not in text
    if code == "500":
        assert "{%" not in text and "{{" not in text


# --- keys ------------------------------------------------------------------------


def test_keys_are_generated_private_and_stable(tmp_path):
    data = tmp_path / "data"  # does not exist yet
    env = base_env(data, DASHBOARD_GENERATE_KEYS="true")
    first = python(env, SHOW_KEYS)
    assert first.returncode == 0, first.stderr
    second = python(env, SHOW_KEYS)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    _, secret_key, fernet_key = first.stdout.split()
    assert len(secret_key) >= 50 and len(set(secret_key)) >= 5
    assert (data / "secret_key").read_text().strip() == secret_key
    assert (data / "fernet_key").read_text().strip() == fernet_key
    for name in ("secret_key", "fernet_key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    # Only the two keys: no temporary files left behind.
    assert sorted(p.name for p in data.iterdir() if "key" in p.name) == [
        "fernet_key",
        "secret_key",
    ]
    # Once made, the files are read without the permission to generate.
    third = python(base_env(data), SHOW_KEYS)
    assert third.returncode == 0, third.stderr
    assert third.stdout == first.stdout


def test_processes_starting_together_agree_on_the_keys(tmp_path):
    env = base_env(tmp_path, DASHBOARD_GENERATE_KEYS="true")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHOW_KEYS],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1


def test_the_dev_database_key_is_not_derived_from_secret_key(tmp_path):
    env = base_env(tmp_path, DASHBOARD_GENERATE_KEYS="true")
    result = python(env, SHOW_KEYS)
    _, secret_key, fernet_key = result.stdout.split()
    import base64
    import hashlib

    derived = base64.urlsafe_b64encode(hashlib.sha256(b"fernet:" + secret_key.encode()).digest())
    assert fernet_key != derived.decode()


def test_a_key_file_others_can_read_refuses_to_start(tmp_path):
    env = base_env(tmp_path, DASHBOARD_GENERATE_KEYS="true")
    assert python(env, SHOW_KEYS).returncode == 0
    (tmp_path / "secret_key").chmod(0o644)
    message = refusal(manage(env, "check"))
    assert message == (
        f"{tmp_path / 'secret_key'} (the SECRET_KEY) can be read by other users: "
        f"run chmod 600 {tmp_path / 'secret_key'}."
    )


# --- production refuses placeholder or missing keys ------------------------------


@pytest.fixture
def prod_env(tmp_path):
    """docker compose's settings (no permission to generate keys), with good keys."""
    from cryptography.fernet import Fernet

    return base_env(
        tmp_path,
        DASHBOARD_HTTPS="true",
        SECRET_KEY="x" * 10 + os.urandom(30).hex(),
        DASHBOARD_FERNET_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="dockyard.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )


def test_production_env_with_keys_starts(prod_env):
    result = manage(prod_env, "check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "name, value, sentence",
    [
        (
            "SECRET_KEY",
            env_example("SECRET_KEY"),
            "SECRET_KEY is still a placeholder: set it in the environment or .env to the "
            "output of python3 -c 'import secrets; print(secrets.token_urlsafe(50))'.",
        ),
        (
            "SECRET_KEY",
            None,
            "SECRET_KEY is not set: set it in the environment or .env to the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))', or set "
            "DASHBOARD_GENERATE_KEYS=true to keep a generated one in {data}/secret_key.",
        ),
        (
            "DASHBOARD_FERNET_KEY",
            env_example("DASHBOARD_FERNET_KEY"),
            "DASHBOARD_FERNET_KEY is not set: set it in the environment or .env to the output "
            "of python3 -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())', or set DASHBOARD_GENERATE_KEYS=true to "
            "keep a generated one in {data}/fernet_key.",
        ),
        (
            "DASHBOARD_FERNET_KEY",
            None,
            "DASHBOARD_FERNET_KEY is not set: set it in the environment or .env to the output "
            "of python3 -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())', or set DASHBOARD_GENERATE_KEYS=true to "
            "keep a generated one in {data}/fernet_key.",
        ),
        (
            "DASHBOARD_FERNET_KEY",
            "not-a-fernet-key",
            "DASHBOARD_FERNET_KEY is not a Fernet key (32 url-safe base64-encoded bytes): set "
            "it to the output of python3 -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'.",
        ),
    ],
    ids=["secret-placeholder", "secret-missing", "fernet-placeholder", "fernet-missing", "bad"],
)
def test_production_refuses_a_placeholder_or_missing_key(prod_env, tmp_path, name, value, sentence):
    env = {**prod_env, name: value}
    env = {k: v for k, v in env.items() if v is not None}
    message = refusal(manage(env, "check"))
    assert message == sentence.format(data=tmp_path)
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "fernet_key").exists()


def test_the_example_env_file_as_it_is_refuses(tmp_path):
    """`cp .env.example .env` and nothing filled in: SECRET_KEY's placeholder is named."""
    env = base_env(tmp_path)
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    assert refusal(manage(env, "check")).startswith("SECRET_KEY is still a placeholder")


# --- plain HTTP on loopback ------------------------------------------------------


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="plain", password=PASSWORD)


def test_default_settings_need_no_https():
    assert settings.HTTPS is False
    assert settings.SECURE_SSL_REDIRECT is False
    assert settings.SESSION_COOKIE_SECURE is False and settings.CSRF_COOKIE_SECURE is False
    assert settings.SECURE_HSTS_SECONDS == 0
    assert getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None


def test_login_over_plain_http_works_with_default_settings(user):
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("login"))
    assert page.status_code == 200
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert not csrf["secure"]
    response = client.post(
        reverse("login"),
        {"username": "plain", "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
    )
    assert response.status_code == 302 and response.url == reverse("home")
    assert not response.cookies[settings.SESSION_COOKIE_NAME]["secure"]
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.get(reverse("home")).status_code == 200


def test_cookies_are_secure_on_a_request_that_came_over_https(user):
    client = Client()
    response = client.post(
        reverse("login"), {"username": "plain", "password": PASSWORD}, secure=True
    )
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME]["secure"] is True
    page = Client().get(reverse("login"), secure=True)
    assert page.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True
