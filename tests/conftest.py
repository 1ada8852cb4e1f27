"""Fixtures shared by the whole suite: real Docker, real Redis, a real Celery worker.

The base fixture is a team `alpha` with an owner (operator), a teammate per role
and an outsider in team `beta`, plus a superuser — the cast every access test uses.
"""

import os
import time

import docker
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from containers.models import Container
from containers.services import sync_host
from dashboard.models import Host, Membership, Profile, Role, Team
from tests.support import fast_flush
from tests.support.helpers import RUN_LABEL, TEST_LABEL, share_test_image, unique

PASSWORD = "test-pass-123!"
# A workload that exits at once on SIGTERM (busybox sleep as PID 1 ignores it).
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def pytest_configure(config):
    fast_flush.install()  # PostgreSQL: reset only the tables a test wrote to


def pytest_collection_modifyitems(items):
    # The engine and the worker are shared: tests that touch them must not run
    # inside a transaction that the worker cannot see.
    for item in items:
        if "live" in item.keywords:
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="session")
def docker_client():
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    try:
        client.ping()
    except Exception as exc:
        pytest.exit(f"No Docker engine on /var/run/docker.sock ({exc}); run `make test`.", 2)
    client.images.get(settings.TEST_IMAGE)
    started = time.time()
    yield client
    _remove_test_objects(client, since=started)
    client.close()


def _remove_test_objects(client, since):
    """Remove what this run made: its run label, or the test label and made since `since`.

    Other test runs may share the engine; their containers are left alone.
    """
    mine = client.api.containers(all=True, filters={"label": f"{RUN_LABEL}={settings.RUN_ID}"})
    for c in client.api.containers(all=True, filters={"label": TEST_LABEL}):
        labels = c.get("Labels") or {}
        if RUN_LABEL not in labels and c["Created"] >= int(since) - 1:
            mine.append(c)
    for c in mine:
        _ignore_gone(client.api.remove_container, c["Id"], force=True, v=True)
    for v in client.api.volumes(filters={"label": TEST_LABEL}).get("Volumes") or []:
        if (v.get("Labels") or {}).get(RUN_LABEL, settings.RUN_ID) != settings.RUN_ID:
            continue  # another run's, made while this one ran
        created = v.get("CreatedAt", "")
        if created and _epoch(created) >= since - 1:
            _ignore_gone(client.api.remove_volume, v["Name"], force=True)
    # Volumes and networks the app made carry this run's label (settings_test.CONTAINER_LABELS).
    run = {"label": f"{RUN_LABEL}={settings.RUN_ID}"}
    for v in client.api.volumes(filters=run).get("Volumes") or []:
        _ignore_gone(client.api.remove_volume, v["Name"], force=True)
    for n in client.api.networks(filters=run):
        _ignore_gone(client.api.remove_network, n["Id"])


def _epoch(rfc3339):
    from containers.inspect import parse_time

    parsed = parse_time(rfc3339)
    return parsed.timestamp() if parsed else 0


def _ignore_gone(remove, *args, **kwargs):
    # Gone already, or being removed by the test's own action: both are fine here. "In
    # use": a volume of another run on the same engine (matched by the test label and
    # its creation time), still mounted by that run's container; it is not ours to remove.
    try:
        remove(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "in progress" not in str(exc) and "in use" not in str(exc):
            raise


@pytest.fixture
def engine_cleanup(docker_client):
    """Remove every container and volume the test made (all carry the test label)."""
    started = time.time()
    yield docker_client
    _remove_test_objects(docker_client, since=started)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (threads) consuming this run's queue on the real Redis."""
    from celery.contrib.testing.worker import start_worker

    from dashboard.celery import app

    with django_db_blocker.unblock():
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=20,
        ) as worker:
            yield worker


@pytest.fixture
def no_task_queue(monkeypatch):
    """Queued jobs send no task: the test plays the worker itself with `jobs.run`.

    Otherwise the session's Celery worker (started by an earlier test) runs the same
    job at the same time, and the two runs race each other on the engine.
    """
    from dashboard.tasks import run_job

    monkeypatch.setattr(run_job, "delay", lambda *args, **kwargs: None)


@pytest.fixture
def local_host(db):
    # Open to every team, as `make run` registers it; grant tests make their own hosts.
    host = Host.objects.create(name="local", url="unix:///var/run/docker.sock", all_teams=True)
    share_test_image(host)  # the test image as a shared base image, as an admin sets it up
    return host


def _user(username, **extra):
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def cast(db):
    """owner/operator/viewer/teamadmin in alpha, outsider in beta, superuser admin."""
    alpha = Team.objects.create(name="alpha")
    beta = Team.objects.create(name="beta")
    users = {
        "owner": _user("owner"),
        "operator": _user("operator"),
        "viewer": _user("viewer"),
        "teamadmin": _user("teamadmin"),
        "outsider": _user("outsider"),
        "admin": get_user_model().objects.create_superuser(username="admin", password=PASSWORD),
    }
    Membership.objects.create(user=users["owner"], team=alpha, role=Role.OPERATOR)
    Membership.objects.create(user=users["operator"], team=alpha, role=Role.OPERATOR)
    Membership.objects.create(user=users["viewer"], team=alpha, role=Role.VIEWER)
    Membership.objects.create(user=users["teamadmin"], team=alpha, role=Role.ADMIN)
    Membership.objects.create(user=users["outsider"], team=beta, role=Role.OPERATOR)
    return type("Cast", (), {"alpha": alpha, "beta": beta, **users, "users": users})


@pytest.fixture
def dashadmin(cast):
    """A dashboard admin by the Profile flag (not a superuser, in no team); joins the cast."""
    user = _user("dashadmin")
    Profile.objects.create(user=user, dashboard_admin=True)
    cast.dashadmin = user
    cast.users["dashadmin"] = user
    return user


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture
def make_container(engine_cleanup, local_host):
    """Start a real container and mirror it, as if `owner` created it for `team`."""

    def make(owner=None, team=None, host=None, name=None, command=LOOP, **kwargs):
        host = host or local_host
        client = docker.DockerClient(base_url=host.url, version="1.41")
        name = name or unique()
        labels = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID, **kwargs.pop("labels", {})}
        c = client.containers.run(
            settings.TEST_IMAGE, command, name=name, detach=True, labels=labels, **kwargs
        )
        client.close()
        sync_host(host)
        row = Container.objects.get(host=host, docker_id=c.id)
        row.owner, row.team = owner, team
        row.save()
        return row

    return make


def pytest_sessionfinish(session):
    # pytest-django deletes the SQLite test database but not its WAL side files.
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name:
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(f"{name}{suffix}")
            except FileNotFoundError:
                pass


@pytest.fixture(scope="session")
def registry_server():
    """A real docker-registry on 127.0.0.1:<free port> with htpasswd (bcrypt) auth.

    Yields a `tests.support.registry.TestRegistry`: `url` ("127.0.0.1:PORT"),
    `username`, `password`, `stop()` / `start()` (same port and data). The process
    is stopped and its directory removed at the end of the session.
    """
    from tests.support.registry import TestRegistry

    registry = TestRegistry()
    try:
        registry.start()
        yield registry
    finally:
        registry.destroy()
