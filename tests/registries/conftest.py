"""Registry fixtures: the session's real registry as a dashboard Registry, and images
pushed into it by the real engine with the registry's credentials."""

import io
import re
import uuid

import docker
import pytest
from django.conf import settings

from dashboard.audit import Actor
from registries import services
from tests.support.helpers import RUN_LABEL, TEST_LABEL


def namespace():
    """This run's repository prefix: other runs share the registry's catalog."""
    return "r" + (re.sub(r"[^a-z0-9]", "", settings.RUN_ID.lower()) or "run")


def push(client, registry_server, repository, tag, *, unique=False):
    """Push `repository:tag` into the registry through the engine; returns its digest.

    `unique`: a one-line image of its own (a label changes its config, so its digest),
    for tests that delete it: a registry deletes by digest, taking every tag that
    shares it. The local copy is removed afterwards either way.
    """
    ref = f"{registry_server.url}/{repository}"
    if unique:
        dockerfile = (
            f"FROM {settings.TEST_IMAGE}\n"
            f'LABEL {TEST_LABEL}="1" {RUN_LABEL}="{settings.RUN_ID}" '
            f'dockyard.unique="{uuid.uuid4().hex}"\n'
        )
        image, _log = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
        image.tag(ref, tag)
    else:
        client.images.get(settings.TEST_IMAGE).tag(ref, tag)
    digest = None
    try:
        auth = {"username": registry_server.username, "password": registry_server.password}
        for line in client.api.push(ref, tag, auth_config=auth, stream=True, decode=True):
            if line.get("error"):
                raise AssertionError(f"push of {ref}:{tag} failed: {line['error']}")
            digest = (line.get("aux") or {}).get("Digest") or digest
    finally:
        client.images.remove(f"{ref}:{tag}")
        if unique:  # untagged, it is usually gone already
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.NotFound:
                pass
    assert digest, f"the engine reported no digest for {ref}:{tag}"
    return digest


@pytest.fixture(scope="session")
def pushed(docker_client, registry_server):
    """Three repositories of this run, pushed once per session: {"repo:tag": digest}."""
    ns = namespace()
    made = {}
    for repo, tags in ((f"{ns}/app", ["v1", "v2", "latest"]), (f"{ns}/web", ["1.0"]),
                       (f"{ns}/tools/cli", ["edge"])):  # fmt: skip
        for tag in tags:
            made[f"{repo}:{tag}"] = push(docker_client, registry_server, repo, tag)
    return made


@pytest.fixture
def registry(cast, registry_server):
    """The real test registry as a dashboard Registry, granted to team alpha."""
    return services.save_registry(
        Actor.system(),
        name="test-registry",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
        teams=[cast.alpha],
    )
