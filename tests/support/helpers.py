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
