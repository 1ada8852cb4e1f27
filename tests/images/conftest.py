"""Fixtures for image tests: a registry granted to team alpha, names unique to the run,
and a cleanup that removes every image and tag this run made (and nothing else)."""

import uuid

import docker
import pytest
from django.conf import settings

from dashboard.audit import Actor
from images.models import Image
from images.services import sync_images
from registries import services as registry_services
from tests.containers.conftest import second_engine, second_host  # noqa: F401
from tests.support.helpers import RUN_LABEL

# Every repository a test names starts with this: cleanup finds them by it.
PREFIX = f"dyimg-{settings.RUN_ID}".lower()


def image_name(what="img"):
    return f"{PREFIX}/{what}-{uuid.uuid4().hex[:6]}"


def job_of(response):
    """The job a view redirected to (fails loudly with the page's messages if none)."""
    from django.contrib.messages import get_messages

    from dashboard.models import Job

    location = response.headers.get("Location") or ""
    assert response.status_code == 302 and location.startswith("/jobs/"), (
        response.status_code,
        location,
        [str(m) for m in get_messages(response.wsgi_request)],
    )
    return Job.objects.get(pk=int(location.strip("/").split("/")[1]))


def remove_run_images(client):
    """Tags under this run's prefix, then images built by this run (its label)."""
    for image in client.images.list():
        for tag in image.tags:
            if PREFIX in tag:
                _gone(client.api.remove_image, tag, force=True)
    for image in client.images.list(all=True, filters={"label": f"{RUN_LABEL}={settings.RUN_ID}"}):
        _gone(client.api.remove_image, image.id, force=True)


def _gone(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "conflict" not in str(exc).lower():
            raise


@pytest.fixture
def image_cleanup(docker_client):
    yield docker_client
    remove_run_images(docker_client)


@pytest.fixture
def shared_base(cast, local_host):
    """The test image, as a dashboard admin would set it up: a shared base image."""
    sync_images(local_host)
    row = next(
        i for i in Image.objects.present().filter(host=local_host) if settings.TEST_IMAGE in i.tags
    )
    Image.objects.filter(pk=row.pk).update(shared=True)
    row.refresh_from_db()
    return row


@pytest.fixture
def registry(cast, registry_server):
    """The test registry, with its credentials, granted to team alpha only."""
    return registry_services.save_registry(
        Actor.system(),
        name=f"reg-{uuid.uuid4().hex[:6]}",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
        teams=[cast.alpha],
    )


@pytest.fixture(scope="module")
def built_image(docker_client):
    """A small real image under this run's prefix: `ensure()` (re)builds it when a test
    removed it and returns (tag, id); removed after the module."""
    import io

    tag = f"{image_name('made')}:1"
    dockerfile = f"FROM {settings.TEST_IMAGE}\nRUN echo {uuid.uuid4().hex} > /id\n"
    made = []

    def ensure():
        try:
            return tag, docker_client.images.get(tag).id
        except docker.errors.ImageNotFound:
            image, _logs = docker_client.images.build(
                fileobj=io.BytesIO(dockerfile.encode()),
                tag=tag,
                labels={RUN_LABEL: settings.RUN_ID},
                rm=True,
            )
            made.append(image.id)
            return tag, image.id

    yield ensure
    for docker_id in made:
        _gone(docker_client.api.remove_image, docker_id, force=True)


@pytest.fixture
def alpha_image(cast, local_host, built_image):
    """That image in the mirror, as team alpha's (made by `owner`)."""
    tag, docker_id = built_image()
    sync_images(local_host)
    Image.objects.filter(host=local_host, docker_id=docker_id).update(
        team=cast.alpha, owner=cast.owner, created_by_dashboard=True
    )
    return Image.objects.get(host=local_host, docker_id=docker_id)
