"""An engine that acts on a request but whose answer never arrives (it died, restarted or
dropped the connection mid-request): the job must not claim the action failed."""

import time

import pytest

from containers.services import request_action
from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Job
from tests.support.helpers import engine_state

from .conftest import engine_events

START = r"POST /v[\d.]+/containers/[0-9a-f]+/start"

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_task_queue")]


def test_a_start_whose_answer_is_lost_is_outcome_unknown_with_the_engines_state(
    cast, slow_host, slow_engine, make_created, engine_cleanup
):
    since = time.time()
    row = make_created(slow_host)
    slow_engine.hold_requests(START, seconds=0, answer=False)
    job = request_action(Actor(cast.operator), row, "start")

    done = jobs.run(job.pk)

    # The engine did start it; nobody heard the answer.
    assert slow_engine.held and slow_engine.held[0][1] is True
    assert engine_state(engine_cleanup, row.docker_id) == "running"
    assert engine_events(row.docker_id, "start", since) == 1
    assert done.status == Job.Status.FAILED
    assert done.message.startswith("Outcome unknown: Host slow stopped answering"), done.message
    assert "whether it was done is unknown" in done.message
    assert done.message.endswith("The engine reports 'running'."), done.message
    (entry,) = AuditEntry.objects.filter(job_id=job.pk)
    assert entry.action == "container.start"
    assert (entry.result, entry.message) == (AuditEntry.Result.UNKNOWN, done.message)
