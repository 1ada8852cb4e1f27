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
    """A production environment, and nothing inherited that could change the outcome."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DASHBOARD_DEBUG": "false",
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
        ({"SECRET_KEY": None}, "SECRET_KEY must be set when DASHBOARD_DEBUG is false"),
        (
            {"DASHBOARD_FERNET_KEY": None},
            "DASHBOARD_FERNET_KEY must be set when DASHBOARD_DEBUG is false",
        ),
        ({"DASHBOARD_DEBUG": "maybe"}, "DASHBOARD_DEBUG must be true or false, got 'maybe'"),
    ],
)
def test_bad_production_config_fails_loudly_at_start(prod_env, change, message):
    env = {**prod_env, **change}
    env = {k: v for k, v in env.items() if v is not None}
    result = deploy_check(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
