"""Helpers for tests (no fixtures): waiting for jobs, reading engine state."""

import time
import uuid

import docker

from dashboard.models import Job

TEST_LABEL = "dockyard.test"
# Set on containers by make_container and by the app (settings_test.CONTAINER_LABELS).
RUN_LABEL = "dockyard.test-run"


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_job(job_or_id, timeout=30):
    """Wait for a job to finish in the worker; returns the Job."""
    pk = getattr(job_or_id, "pk", job_or_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=pk)
        if job.done:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {pk} not done after {timeout}s: {Job.objects.get(pk=pk)}")


def engine_state(client, docker_id):
    """The container's state on the engine, or 'absent'."""
    try:
        return client.api.inspect_container(docker_id)["State"]["Status"]
    except docker.errors.NotFound:
        return "absent"


# A workload that ends at once on SIGTERM (busybox sleep as PID 1 ignores it).
SHELL_LOOP = "sh -c \"trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done\""


def create_form_data(host, team, name, **extra):
    """What the create form posts for a test container (carries the test label)."""
    from django.conf import settings

    return {
        "host": host.pk,
        "team": team.pk,
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": SHELL_LOOP,
        "restart": "no",
        "labels": f"{TEST_LABEL}=1",
        **extra,
    }


def engine_names(client):
    """Names of the test containers on an engine, stopped ones included."""
    # One list call, no inspect per container: another test run on the same engine may
    # remove its own containers between a list and an inspect.
    listed = client.api.containers(all=True, filters={"label": TEST_LABEL})
    return {name.lstrip("/") for c in listed for name in c.get("Names") or []}


def share_test_image(host):
    """Mark the test image a shared base image on `host`, as a dashboard admin does
    on a new host: non-admins may then run it (images.services.use). Nothing to do
    when the engine is down or lacks the image (the tests that need it will say)."""
    from django.conf import settings

    from dashboard.engine import EngineError, engine
    from images.models import Image
    from images.services.sync import record_image

    try:
        with engine(host) as client:
            docker_id = client.api.inspect_image(settings.TEST_IMAGE)["Id"]
            row = record_image(client.api, host, docker_id)
    except (EngineError, docker.errors.NotFound):
        return None
    Image.objects.filter(pk=row.pk).update(shared=True)
    return row
