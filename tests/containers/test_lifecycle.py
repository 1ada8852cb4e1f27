"""A container's whole life through the views, run by the real worker on the real engine."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from containers.models import Container
from dashboard.models import AuditEntry, Job
from tests.support.helpers import TEST_LABEL, engine_state, unique, wait_job

pytestmark = [pytest.mark.live]

LOOP = "sh -c \"trap 'exit 0' TERM; while true; do echo tick; sleep 1; done\""


def create_via_form(client, host, team, name, **extra):
    data = {
        "host": host.pk,
        "team": team.pk,
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": LOOP,
        "restart": "no",
        "labels": f"{TEST_LABEL}=1",
        **extra,
    }
    return client.post(reverse("containers:new"), data)


def test_create_start_stop_restart_remove_reach_the_engine_and_the_audit_log(
    cast, login, local_host, celery_worker, engine_cleanup
):
    client = login(cast.owner)
    name = unique("life")

    response = create_via_form(client, local_host, cast.alpha, name, env="GREETING=s3cr3t-value")
    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Container.objects.get(name=name)
    assert (row.owner, row.team) == (cast.owner, cast.alpha)
    assert engine_state(engine_cleanup, row.docker_id) == "running"

    for action, expected in [("stop", "exited"), ("start", "running"), ("restart", "running")]:
        response = client.post(reverse("containers:action", args=[row.pk, action]))
        assert response.status_code == 302
        job = wait_job(Job.objects.filter(kind="container.action").latest("pk"))
        assert job.status == Job.Status.SUCCEEDED, job.message
        assert engine_state(engine_cleanup, row.docker_id) == expected
        row.refresh_from_db()
        assert row.state == expected

    response = client.post(reverse("containers:action", args=[row.pk, "remove"]), {"force": "on"})
    assert response.status_code == 302
    job = wait_job(Job.objects.filter(kind="container.action").latest("pk"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert engine_state(engine_cleanup, row.docker_id) == "absent"
    row.refresh_from_db()
    assert row.removed_at is not None

    actions = list(
        AuditEntry.objects.filter(target_name=name)
        .order_by("at", "id")
        .values_list("action", "result", "username")
    )
    assert [a for a, _, _ in actions] == [
        "container.create",
        "container.stop",
        "container.start",
        "container.restart",
        "container.remove",
    ]
    assert {(r, u) for _, r, u in actions} == {("ok", "owner")}
    create = AuditEntry.objects.get(action="container.create", target_name=name)
    assert create.source_ip == "127.0.0.1"
    assert create.host_name == "local"
    assert create.params["env_keys"] == ["GREETING"]  # values are not recorded
    assert "s3cr3t-value" not in str(create.params)


def test_redelivered_create_job_does_not_create_a_second_container(
    cast, local_host, engine_cleanup
):
    from dashboard import jobs

    name = unique("redeliver")
    spec = {
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        "labels": {TEST_LABEL: "1"},
        "host_id": local_host.pk,
        "team_id": cast.alpha.pk,
    }
    # A row without a queued task: this test plays the worker itself, twice.
    job = Job.objects.create(kind="container.create", user=cast.owner, params=spec)
    assert jobs.run(job.pk).status == Job.Status.SUCCEEDED
    # The worker died after the engine call but before acking: the broker redelivers.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, lease_until=timezone.now())
    # …while the lease of the lost worker still runs, nobody else may take the job…
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    assert jobs.run(job.pk) is None
    # …and once it ran out, the redelivered message runs it, finding its container.
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    again = jobs.run(job.pk)
    assert again.status == Job.Status.SUCCEEDED, again.message

    on_engine = engine_cleanup.containers.list(all=True, filters={"name": name})
    assert len(on_engine) == 1
    assert Container.objects.filter(name=name).count() == 1
    # A finished job delivered once more is skipped outright.
    assert jobs.run(job.pk) is None
