"""Breach 2: a container carrying a forged job label was adopted by that job.

A create job now knows its container by the engine id it recorded, or — when the
worker died between the engine's answer and the record — by a secret per-job
nonce checked against its own row. Labels anyone can set decide nothing.
"""

from datetime import UTC, datetime

import pytest
from django.conf import settings

from containers.models import Container
from containers.services import request_create
from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import Job
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique

# The tests run each job themselves (jobs.run), so no task may reach a worker.
pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_task_queue")]

IMAGE = "dockyard-test/busybox:latest"
# This run's labels: its cleanup removes what they mark, and no other run's does.
LABELS = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}
# A claim whose lease ran out: its worker is gone, so the job may be claimed again.
EXPIRED = datetime(2000, 1, 1, tzinfo=UTC)


def spec(name):
    return {"image": IMAGE, "name": name, "command": ["sleep", "60"], "labels": LABELS}


def test_forged_job_labels_are_not_adopted(cast, local_host, engine_cleanup):
    next_id = (Job.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    # Someone with CLI access labels a container as every likely next job, old and new style.
    forged_labels = {"dockyard.job": str(next_id), "dockyard.nonce": "0" * 32, **LABELS}
    forged = engine_cleanup.containers.run(
        IMAGE, "sleep 60", name=unique("forged"), labels=forged_labels, detach=True
    )
    name = unique("wanted")

    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, spec(name)).pk)

    assert job.status == Job.Status.SUCCEEDED, job.message
    made = engine_cleanup.containers.get(name)
    assert job.created_id == made.id != forged.id
    assert Container.objects.get(docker_id=made.id).team == cast.alpha
    # The forged one is mirrored as what it is: nobody's.
    forged_row = Container.objects.filter(docker_id=forged.id).first()
    assert forged_row is None or forged_row.team is None


def test_a_rerun_after_a_crash_finds_its_container_by_recorded_id(cast, local_host, engine_cleanup):
    name = unique("once")
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, spec(name)).pk)
    # The worker "died" after the engine answered: the job is claimed but unfinished.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, lease_until=EXPIRED)

    again = jobs.run(job.pk)

    assert again.status == Job.Status.SUCCEEDED, again.message
    assert len(engine_cleanup.containers.list(all=True, filters={"name": name})) == 1
    assert Container.objects.filter(name=name).count() == 1


def test_a_rerun_before_the_id_was_recorded_finds_it_by_its_secret_nonce(
    cast, local_host, engine_cleanup
):
    name = unique("nonce")
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, spec(name)).pk)
    first_id = job.created_id
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, lease_until=EXPIRED, created_id=""
    )

    again = jobs.run(job.pk)

    assert again.status == Job.Status.SUCCEEDED, again.message
    assert len(engine_cleanup.containers.list(all=True, filters={"name": name})) == 1
    assert Container.objects.get(name=name).docker_id == first_id


def test_a_copied_nonce_makes_the_rerun_refuse_rather_than_guess(cast, local_host, engine_cleanup):
    name = unique("copied")
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, spec(name)).pk)
    # Someone who read the label off the real container makes a twin carrying it.
    twin = engine_cleanup.containers.run(
        IMAGE,
        "sleep 60",
        name=unique("twin"),
        labels={"dockyard.nonce": job.nonce, **LABELS},
        detach=True,
    )
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, lease_until=EXPIRED, created_id=""
    )

    again = jobs.run(job.pk)

    assert again.status == Job.Status.FAILED
    assert "More than one container claims to be this job's" in again.message
    assert not Container.objects.filter(docker_id=twin.id, team=cast.alpha).exists()


def test_a_job_whose_user_was_deleted_does_nothing_and_is_audited_as_denied(
    cast, local_host, engine_cleanup
):
    from dashboard.models import AuditEntry

    name = unique("orphan")
    job = request_create(Actor(cast.operator), local_host, cast.alpha, spec(name))
    cast.operator.delete()

    done = jobs.run(job.pk)

    assert done.status == Job.Status.FAILED
    assert "no longer exists" in done.message
    assert not engine_cleanup.containers.list(all=True, filters={"name": name})
    entry = AuditEntry.objects.get(action="container.create")
    assert (entry.result, entry.username) == (AuditEntry.Result.DENIED, "(deleted user)")
