"""A volume create whose worker was lost: recovery closes the intent with what the engine
shows, and a rerun that cannot take the volume as its own fails saying it was a rerun."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from dashboard import jobs
from dashboard.audit import Actor, record
from dashboard.models import AuditEntry, Job
from resources import services
from resources.models import Volume
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique


def test_a_rerun_never_takes_a_same_named_volume_it_did_not_make(
    cast, local_host, engine_cleanup, no_task_queue
):
    name = unique("lost-vol")
    job = services.request_create(Actor(cast.operator), "volume", local_host, cast.alpha, name)
    # Its worker claimed it, wrote the intent, and died; meanwhile someone else made a
    # volume of that name on the engine (not carrying this job's nonce).
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )
    record(
        Actor(cast.operator),
        "volume.create",
        host=local_host,
        team=cast.alpha,
        target=name,
        target_type="volume",
        result=AuditEntry.Result.PENDING,
        job=job,
    )
    engine_cleanup.volumes.create(name, labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID})

    assert jobs.recover()["rerun"] == [job.pk]
    done = jobs.run(job.pk)

    assert done.status == Job.Status.FAILED
    assert done.message == (
        f"The name {name!r} cannot be used on local; choose another."
        " (ran again after a lost worker)"
    )
    lost, rerun = AuditEntry.objects.filter(job_id=job.pk).order_by("id")
    assert lost.result == AuditEntry.Result.UNKNOWN
    assert f"the engine reports volume {name!r} exists." in lost.message  # not "made by this job"
    assert (rerun.result, rerun.message) == (
        AuditEntry.Result.FAILED,
        f"The name {name!r} cannot be used on local; choose another.",
    )
    assert not Volume.objects.filter(name=name, team=cast.alpha).exists()
