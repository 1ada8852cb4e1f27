"""Tag, remove (and its refusals), export → import, prune: real engine, jobs run here."""

import io

import docker
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from containers.models import Container
from containers.services import sync_host
from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry
from images import services
from images.models import Image
from tests.images.conftest import image_name, job_of
from tests.support.helpers import RUN_LABEL, TEST_LABEL


def test_tag_adds_a_name_and_the_list_follows(
    cast, login, alpha_image, no_task_queue, image_cleanup
):
    target = f"{image_name('tagged')}:2"
    response = login(cast.operator).post(
        reverse("images:tag", args=[alpha_image.pk]), {"target": target}
    )
    job = jobs.run(job_of(response).pk)

    assert job.status == "succeeded", job.message
    alpha_image.refresh_from_db()
    assert target in alpha_image.tags
    assert image_cleanup.images.get(target).id == alpha_image.docker_id
    assert AuditEntry.objects.get(job_id=job.pk).params == {"tag": target}


def test_remove_is_refused_while_another_teams_container_uses_it(
    cast, login, dashadmin, alpha_image, engine_cleanup, no_task_queue, image_cleanup
):
    # A container of team beta made from alpha's image (e.g. before a reassignment).
    client = docker.DockerClient(version="1.41")
    c = client.containers.create(
        alpha_image.tags[0], "true", labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}
    )
    sync_host(alpha_image.host)
    Container.objects.filter(docker_id=c.id).update(team=cast.beta, owner=cast.outsider)

    job = jobs.run(services.request_remove(Actor(cast.operator), alpha_image).pk)
    assert job.status == "failed"
    assert "used by 1 container(s) of another team" in job.message
    assert client.images.get(alpha_image.docker_id)  # still there
    assert AuditEntry.objects.get(job_id=job.pk).result == "failed"

    # A dashboard admin may force it.
    job = jobs.run(services.request_remove(Actor(dashadmin), alpha_image, force=True).pk)
    assert job.status == "succeeded", job.message
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(alpha_image.docker_id)
    alpha_image.refresh_from_db()
    assert alpha_image.removed_at is not None
    c.remove(force=True)
    client.close()


def test_export_then_import_gives_the_team_the_image(
    cast, login, alpha_image, no_task_queue, image_cleanup, settings, tmp_path
):
    settings.IMAGE_SPOOL_DIR = tmp_path / "spool"
    client = login(cast.owner)
    archive = b"".join(
        client.post(reverse("images:export", args=[alpha_image.pk])).streaming_content
    )
    assert len(archive) > 1000
    # Gone from the engine, then loaded back from the exported archive.
    image_cleanup.api.remove_image(alpha_image.docker_id, force=True)
    response = client.post(
        reverse("images:import"),
        {
            "host": alpha_image.host.pk,
            "team": cast.alpha.pk,
            "archive": SimpleUploadedFile("img.tar", archive),
        },
    )
    job = jobs.run(job_of(response).pk)

    assert job.status == "succeeded", job.message
    assert image_cleanup.images.get(alpha_image.docker_id)
    row = Image.objects.get(host=alpha_image.host, docker_id=alpha_image.docker_id)
    assert row.removed_at is None and row.team == cast.alpha
    assert list((tmp_path / "spool").iterdir()) == []  # the upload is gone once loaded


def test_prune_removes_dangling_images_on_the_host(
    cast, login, dashadmin, second_host, docker_client, no_task_queue
):
    # On the second engine (this run's own): prune is engine-wide.
    other = docker.DockerClient(base_url=second_host.url, version="1.41")
    try:
        dockerfile = f"FROM {docker_client.images.get('dockyard-test/busybox:latest').tags[0]}\n"
        dockerfile += "RUN echo dangling > /d\n"
        image, _ = other.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), labels={RUN_LABEL: "x"}, rm=True
        )
        services.sync_images(second_host)
        assert Image.objects.get(host=second_host, docker_id=image.id).dangling

        response = login(dashadmin).post(reverse("images:prune"), {"host": second_host.pk})
        job = jobs.run(job_of(response).pk)

        assert job.status == "succeeded", job.message
        with pytest.raises(docker.errors.ImageNotFound):
            other.images.get(image.id)
        assert Image.objects.get(host=second_host, docker_id=image.id).removed_at is not None
    finally:
        other.close()
