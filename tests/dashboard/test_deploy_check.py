"""Production settings pass `manage.py check --deploy`; bad production config fails loudly."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prod_env(tmp_path):
    """docker compose's production settings, and nothing inherited that could change the
    outcome (its own data directory: no key files of a `make run` are found)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_HTTPS": "true",
        "DASHBOARD_TRUSTED_PROXIES": "1",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DASHBOARD_FERNET_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "dash.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def deploy_check(env):
    return manage(env, "check", "--deploy", "--fail-level", "WARNING")


def test_production_settings_pass_the_deploy_check(prod_env):
    result = deploy_check(prod_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_are_https_only(prod_env):
    code = (
        "import django; django.setup(); from django.conf import settings as s; print("
        "s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=prod_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 5) == [
        "False",
        "True",
        "True",
        "True",
        "True",
        "('HTTP_X_FORWARDED_PROTO', 'https')\n",
    ]


def test_make_run_defaults_fail_the_deploy_check_as_they_should(prod_env):
    """Plain HTTP on loopback (no DASHBOARD_HTTPS) is not a production setup."""
    env = {k: v for k, v in prod_env.items() if k != "DASHBOARD_HTTPS"}
    result = deploy_check(env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout


@pytest.mark.parametrize(
    "change, check_id",
    [
        ({"SECRET_KEY": "short-and-guessable"}, "security.W009"),
        ({"ALLOWED_HOSTS": ""}, "security.W020"),
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
    ],
)
def test_weakened_production_settings_fail_the_deploy_check(prod_env, change, check_id):
    result = deploy_check({**prod_env, **change})
    assert result.returncode != 0
    assert check_id in result.stderr + result.stdout


@pytest.mark.parametrize(
    "change, message",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set: set it in the environment or .env"),
        (
            {"DASHBOARD_FERNET_KEY": None},
            "DASHBOARD_FERNET_KEY is not set: set it in the environment or .env",
        ),
        ({"SECRET_KEY": "change-me-to-50-random-characters"}, "SECRET_KEY is still a placeholder"),
        ({"DASHBOARD_DEBUG": "maybe"}, "DASHBOARD_DEBUG must be true or false, got 'maybe'"),
        ({"DASHBOARD_HTTPS": "yes please"}, "DASHBOARD_HTTPS must be true or false"),
        (
            {"DASHBOARD_TRUSTED_PROXIES": "the-proxy"},
            "DASHBOARD_TRUSTED_PROXIES must be a number of proxies or a list of proxy "
            "addresses or CIDRs, got 'the-proxy'.",
        ),
    ],
)
def test_bad_production_config_fails_loudly_at_start(prod_env, change, message):
    env = {**prod_env, **change}
    env = {k: v for k, v in env.items() if v is not None}
    result = deploy_check(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
