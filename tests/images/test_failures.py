"""A failed pull, push or build says why: unauthorized, unreachable, not found, the
failing step's output. Real engine, real registry; jobs run in this process."""

import contextlib
import re

import docker
import pytest

from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry
from images import reference, services
from images.models import Image
from tests.images.conftest import image_name


def _pull(cast, host, text):
    ref, registry = services.build_reference(cast.owner, cast.alpha, text=text)
    job = services.request_pull(Actor(cast.owner), host, cast.alpha, ref, registry)
    return jobs.run(job.pk)


def test_wrong_credentials_say_unauthorized(
    cast, local_host, registry, registry_server, no_task_queue, image_cleanup
):
    registry.password = "not-the-password"
    registry.save()

    job = _pull(cast, local_host, f"{registry.address}/{image_name()}:1")

    assert job.status == "failed"
    assert "unauthorized" in job.message
    assert "not-the-password" not in job.message + job.output + repr(job.params)
    entry = AuditEntry.objects.get(job_id=job.pk, action="image.pull")
    assert entry.result == "failed" and "unauthorized" in entry.message


def test_stopped_registry_says_unreachable(
    cast, local_host, registry, registry_server, no_task_queue, image_cleanup
):
    registry_server.stop()
    try:
        job = _pull(cast, local_host, f"{registry.address}/{image_name()}:1")
    finally:
        registry_server.start()

    assert job.status == "failed"
    assert "unreachable" in job.message


def test_unknown_image_says_not_found(
    cast, local_host, registry, registry_server, no_task_queue, image_cleanup
):
    job = _pull(cast, local_host, f"{registry.address}/{image_name('nothing')}:1")

    assert job.status == "failed"
    assert "not found" in job.message and "unknown image" in job.message


def test_push_with_wrong_credentials_says_unauthorized(
    cast, local_host, shared_base, registry, no_task_queue, image_cleanup
):
    tagged = f"{registry.address}/{image_name()}:1"
    job = services.request_build(
        Actor(cast.owner),
        local_host,
        cast.alpha,
        tag=tagged,
        dockerfile_text="FROM dockyard-test/busybox:latest\nRUN echo x > /x\n",
    )
    assert jobs.run(job.pk).status == "succeeded"
    image = next(i for i in Image.objects.present().filter(host=local_host) if tagged in i.tags)
    registry.password = "wrong-again"
    registry.save()

    job = jobs.run(services.request_push(Actor(cast.owner), image, tagged).pk)

    assert job.status == "failed" and "unauthorized" in job.message


def test_failing_run_step_fails_the_job_with_its_output(
    cast, local_host, shared_base, no_task_queue, image_cleanup
):
    dockerfile = (
        "FROM dockyard-test/busybox:latest\n"
        "RUN echo first-step-ok\n"
        "RUN echo about-to-fail-9f3 && ls /no/such/dir && echo never-printed\n"
    )
    job = services.request_build(
        Actor(cast.owner),
        local_host,
        cast.alpha,
        tag=f"{image_name()}:1",
        dockerfile_text=dockerfile,
    )
    job = jobs.run(job.pk)
    # The steps that worked left intermediate images (the build never got to its label).
    for short_id in re.findall(r"^ ---> ([0-9a-f]{12})$", job.output, re.M):
        if short_id != shared_base.short_id:
            with contextlib.suppress(docker.errors.APIError):
                image_cleanup.api.remove_image(short_id)

    assert job.status == "failed"
    assert "Build failed at Step 3/" in job.message
    assert "returned a non-zero code" in job.message
    assert "about-to-fail-9f3" in job.message  # the step's own output
    assert "/no/such/dir" in job.message
    assert "first-step-ok" not in job.message  # only that step's
    assert "never-printed" not in job.output.splitlines()  # the step stopped there
    assert AuditEntry.objects.get(job_id=job.pk).result == "failed"


@pytest.mark.parametrize(
    "text", ["Upper", "team/Upper:1", "a//b", "x:-tag", "has space", "a" * 300, ""]
)
def test_malformed_references_are_refused_before_any_job(text):
    with pytest.raises(reference.BadReference):
        reference.parse(text)


def test_lost_worker_recovery_says_what_the_engine_has(cast, local_host, shared_base):
    from dashboard.models import Job

    present = Job.objects.create(
        kind="image.pull", host=local_host, params={"reference": shared_base.tags[0]}
    )
    absent = Job.objects.create(
        kind="image.pull", host=local_host, params={"reference": f"{image_name()}:1"}
    )
    assert jobs._engine_state(present).startswith(f"{shared_base.tags[0]} is image ")
    assert jobs._engine_state(absent).startswith("no image ")
    # A load names tags; a copy names its target host: each says what the engine has.
    absent_tag = f"{image_name()}:1"
    load = Job.objects.create(
        kind="image.load", host=local_host, params={"tags": [shared_base.tags[0], absent_tag]}
    )
    assert jobs._engine_state(load) == (
        f"{shared_base.tags[0]} is image {shared_base.docker_id[7:19]}; no image {absent_tag}"
    )
    copy = Job.objects.create(
        kind="image.copy",
        host=local_host,
        params={"pk": shared_base.pk, "to_host": local_host.pk},
    )
    assert jobs._engine_state(copy) == f"image {shared_base.short_id} on local"
