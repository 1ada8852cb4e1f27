"""Build → ship → run through the dashboard, on the real engine and a real registry.

An operator builds an image from a Dockerfile, pushes it with the registry's stored
credentials, removes the local copy, pulls it back with per-layer progress, and
copies it to a second engine. The credentials never show in a job, its output or
the audit log; every step is audited and the image list follows at once.
"""

import docker
import pytest
from django.urls import reverse

from dashboard.models import AuditEntry
from images.models import Image
from tests.images.conftest import image_name, job_of
from tests.support.helpers import wait_job

pytestmark = [pytest.mark.live]

DOCKERFILE = (
    "FROM dockyard-test/busybox:latest\n"
    "RUN head -c 1500000 /dev/urandom > /blob && echo built-for-test\n"
    'CMD ["cat", "/blob"]\n'
)


def _secret_nowhere(job, secret):
    job.refresh_from_db()
    assert secret not in repr(job.params) + job.output + job.message + job.secret_params
    audit = AuditEntry.objects.filter(job_id=job.pk)
    assert all(secret not in repr(e.params) + e.message for e in audit)


def test_build_push_remove_pull_and_copy(
    cast,
    login,
    local_host,
    shared_base,
    registry,
    registry_server,
    second_host,
    image_cleanup,
    celery_worker,
):
    client = login(cast.owner)
    name = f"{registry.address}/{image_name('app')}"
    tagged = f"{name}:1.0"

    # Build from a Dockerfile typed in the page.
    response = client.post(
        reverse("images:build"),
        {
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "tag": tagged,
            "dockerfile_text": DOCKERFILE,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = wait_job(job_of(response), timeout=90)
    assert job.status == "succeeded", job.message
    assert "Step 2/" in job.output and ": RUN head -c" in job.output
    assert "built-for-test" in job.output
    image = next(i for i in Image.objects.present().filter(host=local_host) if tagged in i.tags)
    assert (image.team, image.owner, image.created_by_dashboard) == (cast.alpha, cast.owner, True)
    assert AuditEntry.objects.get(job_id=job.pk, action="image.build").result == "ok"
    built_id = image.docker_id

    # Push with the registry's stored credentials, with progress.
    response = client.post(reverse("images:push", args=[image.pk]), {"tag": tagged})
    assert response.status_code == 302
    job = wait_job(job_of(response), timeout=90)
    assert job.status == "succeeded", job.message
    assert "sha256:" in job.message
    assert any(p["status"] in ("Pushed", "Layer already exists") for p in job.progress.values())
    _secret_nowhere(job, registry_server.password)

    # Remove the local copy.
    response = client.post(reverse("images:remove", args=[image.pk]))
    job = wait_job(job_of(response), timeout=60)
    assert job.status == "succeeded", job.message
    with pytest.raises(docker.errors.ImageNotFound):
        image_cleanup.images.get(tagged)
    image.refresh_from_db()
    assert image.removed_at is not None  # the list follows at once

    # Pull it back by registry + repository + tag, with per-layer progress.
    response = client.post(
        reverse("images:pull"),
        {
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "registry": registry.pk,
            "repository": name.split("/", 1)[1],
            "tag": "1.0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = wait_job(job_of(response), timeout=90)
    assert job.status == "succeeded", job.message
    assert f"Pulling from {name.split('/', 1)[1]}" in job.output
    layers = job.progress
    assert any(
        p.get("total", 0) > 1_000_000 and p["status"] == "Pull complete" for p in layers.values()
    ), layers
    _secret_nowhere(job, registry_server.password)
    pulled = image_cleanup.images.get(tagged)
    assert pulled.id == built_id
    image.refresh_from_db()
    assert image.removed_at is None and image.team == cast.alpha

    # Copy it to the second engine (granted to alpha): save on one, load on the other.
    second_host.teams.add(cast.alpha)
    response = client.post(reverse("images:copy", args=[image.pk]), {"to_host": second_host.pk})
    assert response.status_code == 302
    job = wait_job(job_of(response), timeout=90)
    assert job.status == "succeeded", job.message
    other = docker.DockerClient(base_url=second_host.url, version="1.41")
    try:
        assert other.images.get(tagged).id == built_id
        copied = Image.objects.get(host=second_host, docker_id=built_id)
        assert copied.team == cast.alpha and tagged in copied.tags
    finally:
        other.api.remove_image(built_id, force=True)
        other.close()
