"""Fixtures for container tests that need a second Docker engine."""

import docker
import pytest
from django.conf import settings

from dashboard.engine import forget_client
from dashboard.models import Host
from tests.support.engines import SecondEngine
from tests.support.helpers import TEST_LABEL, share_test_image


@pytest.fixture(scope="session")
def second_engine():
    """The second dockerd, in its own netns, with the test image; gone after the session.

    One per test run (named after the run id), so two suites on one machine never
    stop or destroy each other's engine.
    """
    engine = SecondEngine(
        name=f"dockyard-h2-{settings.RUN_ID}", base=f"/tmp/dockyard-h2-{settings.RUN_ID}"
    )
    try:
        engine.start()
    except Exception:
        engine.destroy()
        raise
    yield engine
    engine.destroy()


@pytest.fixture
def second_host(second_engine, db):
    """Host `h2` on the second engine (restarted first if a test stopped it)."""
    second_engine.start()  # idempotent: a no-op beyond two CLI calls when it is up
    host = Host.objects.create(name="h2", url=second_engine.url)
    share_test_image(host)  # as a dashboard admin sets up a new host
    yield host
    forget_client(host)
    if second_engine.running():
        client = docker.DockerClient(base_url=second_engine.url, version="1.41")
        for c in client.containers.list(all=True, filters={"label": TEST_LABEL}):
            c.remove(force=True, v=True)
        for v in client.volumes.list(filters={"label": TEST_LABEL}):
            v.remove(force=True)
        client.close()
