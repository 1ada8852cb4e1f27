"""A live worker keeps its job through a failed lease renewal (a database blip)."""

import threading
import time

import pytest
from django.db import OperationalError

from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import Job


@pytest.fixture
def slow_kind(monkeypatch):
    """A job kind whose handler works for 1.5 s (a stop waiting on the engine)."""
    monkeypatch.setitem(jobs.HANDLERS, "test.slow", lambda job: time.sleep(1.5) or "done")
    return "test.slow"


def test_a_failed_renewal_is_retried_and_recovery_leaves_the_live_job_alone(
    cast, slow_kind, settings, monkeypatch, transactional_db, no_task_queue
):
    settings.JOB_LEASE_SECONDS = 0.6  # renewed every 0.2 s
    real_lease, calls = jobs._lease, []

    def lease_failing_once():
        calls.append(threading.current_thread().name)
        if len(calls) == 2:  # the first renewal: the database is away for a moment
            raise OperationalError("server closed the connection unexpectedly")
        return real_lease()

    monkeypatch.setattr(jobs, "_lease", lease_failing_once)
    job = jobs.enqueue(Actor(cast.owner), slow_kind)
    runner = threading.Thread(target=lambda: jobs.run(job.pk))
    runner.start()
    try:
        time.sleep(1.0)  # past the first lease: only renewals after the failure hold it
        assert jobs.recover() == {"resent": [], "rerun": [], "failed": []}
    finally:
        runner.join(10)
    done = Job.objects.get(pk=job.pk)
    assert (done.status, done.attempts, done.message) == (Job.Status.SUCCEEDED, 1, "done")
    assert calls.count(f"lease-{job.pk}") >= 3, calls


def test_a_refusal_raised_inside_engine_keeps_its_words(local_host):
    from dashboard.engine import EngineError, engine

    with pytest.raises(EngineError) as raised, engine(local_host):
        raise jobs.JobFailed("More than one container claims to be this job's; refusing to guess.")
    assert raised.value.message == (
        "More than one container claims to be this job's; refusing to guess."
    )
