"""A stack on an engine that demands mutual TLS (its own network namespace): Compose
gets the host's DOCKER_HOST and TLS files from a private folder, nothing else from the
dashboard's environment, and the folder is gone afterwards."""

import glob

import pytest
from django.conf import settings

from dashboard.audit import Actor
from dashboard.engine import forget_client
from dashboard.models import Host
from stacks import services
from stacks.models import StackContainer
from tests.support.engines import TLSEngine
from tests.support.helpers import share_test_image

from .conftest import deployed

pytestmark = [pytest.mark.live, pytest.mark.two_hosts]

FILE = f"""services:
  app:
    image: {settings.TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


@pytest.fixture(scope="module")
def tls_engine():
    engine = TLSEngine(
        name=f"dockyard-stk-{settings.RUN_ID}", base=f"/tmp/dockyard-stk-{settings.RUN_ID}"
    )
    try:
        engine.start(image=True)
    except Exception:
        engine.destroy()
        raise
    yield engine
    engine.destroy()


def test_stack_deploys_and_goes_down_on_a_mutual_tls_engine(
    cast, tls_engine, celery_worker, monkeypatch
):
    # A CA bundle in the worker's environment must not reach Compose (nor break it).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    host = Host(
        name="tls",
        url=tls_engine.url,
        tls_ca_cert=tls_engine.ca_pem,
        tls_client_cert=tls_engine.client_cert_pem,
        all_teams=True,
    )
    host.tls_client_key = tls_engine.client_key_pem
    host.save()
    share_test_image(host)  # as a dashboard admin does for a new host's base image
    try:
        stack, job = services.create_stack(
            Actor(cast.owner),
            host=host,
            team=cast.alpha,
            name="secure",
            source="editor",
            compose_text=FILE,
        )
        deployed(job, timeout=120)
        member = StackContainer.objects.select_related("container").get(stack=stack)
        assert member.container.host == host and member.container.team == cast.alpha
        listed = tls_engine.docker(
            "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"
        )
        assert member.container.docker_id.startswith(listed.stdout.strip())
        deployed(services.request_action(Actor(cast.owner), stack, "down"), timeout=120)
        listed = tls_engine.docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}"
        )
        assert listed.stdout.strip() == ""
        assert not glob.glob("/tmp/dockyard-compose-*/certs/key.pem")  # the TLS files are gone
    finally:
        forget_client(host)
