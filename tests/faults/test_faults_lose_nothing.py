"""Faults lose nothing: a worker or the broker killed mid-work, with real signals.

A real `celery worker` (beat inside it running job recovery every second) is
SIGKILLed while a job's request is with the engine, or the broker is SIGKILLed while
jobs wait; the database keeps the jobs, recovery finishes them, and the engine shows
each action done exactly once. Every test reads the audit trail: the lost worker's
intent ends "outcome unknown" with what the engine reported, a rerun has its own.

Jobs are made here with `no_task_queue`: the worker's recovery sends them.
"""

import glob
import os
import tempfile
import time
from datetime import timedelta

import docker
import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.html import escape

from containers.models import Container
from containers.services import request_action, request_create
from dashboard.audit import Actor, record
from dashboard.models import AuditEntry, Job
from tests.support.helpers import TEST_LABEL, engine_state, unique

from .conftest import (
    engine_events,
    intents,
    job_state,
    no_job_left_behind,
    running_with_intent,
    wait_for,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_task_queue")]

# PID 1 ignores SIGTERM: the engine waits its full 10 s before it kills it.
IGNORES_TERM = ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
START = r"POST /v[\d.]+/containers/[0-9a-f]+/start"
CREATE = r"POST /v[\d.]+/containers/create"


@pytest.fixture
def engine():
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    yield client
    client.close()


def wait_done(job, workers, timeout=60):
    return wait_for(
        lambda: (fresh := job_state(job)).done and fresh,
        timeout,
        f"job {job.pk} ends",
        lambda: f"{job_state(job).__dict__}\n{workers.log_tail()}",
    )


def assert_recovered(job):
    """Ended after one lost worker: rerun and succeeded, or failed saying what the engine showed."""
    if job.status == Job.Status.SUCCEEDED:
        assert job.attempts == 2, job.__dict__
        assert "(ran again after a lost worker)" in job.message, job.message
    else:
        assert job.status == Job.Status.FAILED, job.__dict__
        assert job.message.startswith("Worker lost; the engine reports "), job.message


def assert_audit_after_loss(job, engine_said):
    """The lost worker's intent: UNKNOWN with the engine's state; a rerun's own: OK."""
    entries = intents(job)
    assert entries, f"no audit entries for job {job.pk}"
    first, rest = entries[0], entries[1:]
    assert first.result == AuditEntry.Result.UNKNOWN, (first.result, first.message)
    assert first.message.startswith("Worker lost before the result came"), first.message
    assert "the engine reports" in first.message and engine_said(first.message), first.message
    assert first.completed_at is not None
    if job.status == Job.Status.SUCCEEDED:
        assert [e.result for e in rest] == [AuditEntry.Result.OK], [
            (e.result, e.message) for e in rest
        ]
        assert rest[0].completed_at is not None
    else:
        assert rest == [], [(e.result, e.message) for e in rest]
    assert {e.action for e in entries} == {f"container.{job.verb}"}


def processes_naming(text):
    """Command lines of live processes that contain `text`."""
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as fh:
                args = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def states(*names):
    return lambda message: any(f"'{name}'" in message for name in names)


def test_worker_killed_during_a_stop(cast, make_container, workers, engine):
    """The engine is in its 10 s stop when the worker dies; the stop is not lost nor repeated."""
    workers.start()
    since = time.time()
    row = make_container(owner=cast.owner, team=cast.alpha, command=IGNORES_TERM)
    job = request_action(Actor(cast.operator), row, "stop")

    wait_for(
        lambda: running_with_intent(job),
        30,
        "the stop runs, its intent on record",
        workers.log_tail,
    )
    # The engine has sent SIGTERM and now waits its 10 s: the answer is not back yet.
    wait_for(lambda: engine_events(row.docker_id, "kill", since), 10, "the engine began the stop")
    workers.kill()
    assert engine_state(engine, row.docker_id) == "running"
    workers.start()

    job = wait_done(job, workers)
    assert_recovered(job)
    wait_for(lambda: engine_state(engine, row.docker_id) == "exited", 20, "the container exited")
    assert_audit_after_loss(job, states("running", "exited"))
    no_job_left_behind()
    stops = engine_events(row.docker_id, "stop", since)
    assert stops == 1, f"the engine performed {stops} stops of the container, not one"


def test_worker_killed_during_a_start(cast, slow_host, slow_engine, make_created, workers, engine):
    """The start is on its way to the engine when the worker dies; the engine still starts it."""
    workers.start()
    since = time.time()
    row = make_created(slow_host)
    slow_engine.hold_requests(START, seconds=2, deliver=True)
    job = request_action(Actor(cast.operator), row, "start")

    wait_for(
        lambda: running_with_intent(job),
        30,
        "the start runs, its intent on record",
        workers.log_tail,
    )
    slow_engine.wait_holding()  # the start is on its way to the engine
    workers.kill()
    workers.start()

    job = wait_done(job, workers)
    assert slow_engine.held == [(slow_engine.held[0][0], True)], slow_engine.held
    assert_recovered(job)
    assert engine_state(engine, row.docker_id) == "running"
    assert engine_events(row.docker_id, "start", since) == 1
    assert_audit_after_loss(job, states("running", "created"))
    if job.status == Job.Status.SUCCEEDED:
        assert "already running" in job.message, job.message  # the rerun did nothing
    no_job_left_behind()


def test_worker_killed_during_a_create(cast, slow_host, slow_engine, workers, engine):
    """The create is on its way to the engine when the worker dies: one container, found again."""
    workers.start()
    since = time.time()
    name = unique("flt-create")
    spec = {
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        "labels": {TEST_LABEL: "1"},
    }
    slow_engine.hold_requests(CREATE, seconds=2, deliver=True)
    job = request_create(Actor(cast.operator), slow_host, cast.alpha, spec)

    def lost_point():
        fresh = job_state(job)
        return fresh.status == Job.Status.RUNNING and (fresh.created_id or running_with_intent(job))

    wait_for(lost_point, 30, "the create runs, its intent on record", workers.log_tail)
    slow_engine.wait_holding()  # the create is on its way to the engine
    workers.kill()
    workers.start()

    job = wait_done(job, workers)
    assert slow_engine.held == [(slow_engine.held[0][0], True)], slow_engine.held
    assert_recovered(job)
    named = [
        c
        for c in engine.api.containers(all=True, filters={"name": name})
        if f"/{name}" in (c.get("Names") or [])
    ]
    assert len(named) == 1, named
    docker_id = named[0]["Id"]
    assert engine_events(docker_id, "create", since) == 1
    rows = Container.objects.filter(host=slow_host, name=name, removed_at__isnull=True)
    assert rows.count() == 1, list(rows.values())
    mirror = rows.get()
    assert mirror.docker_id == docker_id
    assert (mirror.team, mirror.owner) == (cast.alpha, cast.operator)
    if job.status == Job.Status.SUCCEEDED:
        # Found again by its nonce: the created id was never recorded, the job names it now.
        assert job.container_id == mirror.pk and job.created_id in ("", docker_id)
    assert_audit_after_loss(
        job, lambda m: "no container made by this job" in m or docker_id[:12] in m
    )
    no_job_left_behind()
    # What the user asked for: a running container, started once.
    state = engine_state(engine, docker_id)
    starts = engine_events(docker_id, "start", since)
    assert (state, starts) == ("running", 1), (
        f"the job {job.status} ({job.message!r}) but the container is {state!r}, "
        f"started {starts} times"
    )


def test_redis_killed_while_jobs_wait(
    cast, local_host, make_created, worker, private_redis, engine
):
    """Jobs made while the broker is dead run once it is back, each exactly once."""
    since = time.time()
    rows = [make_created(local_host) for _ in range(3)]
    private_redis.kill()
    jobs = [request_action(Actor(cast.operator), row, "start") for row in rows]
    # Recovery tries to send them (every second, after 2 s): the broker is gone.
    time.sleep(4)
    assert all(job_state(j).status == Job.Status.QUEUED for j in jobs)
    private_redis.start()  # same port, same append-only file

    for job in jobs:
        done = wait_done(job, worker)
        assert done.status == Job.Status.SUCCEEDED, done.message
        assert done.attempts == 1, done.__dict__  # nothing run twice
        assert not done.message, done.message
        entries = intents(done)
        assert [(e.action, e.result) for e in entries] == [
            ("container.start", AuditEntry.Result.OK)
        ], [(e.result, e.message) for e in entries]
    for row in rows:
        assert engine_state(engine, row.docker_id) == "running"
        assert engine_events(row.docker_id, "start", since) == 1
    no_job_left_behind()


def test_pages_answer_while_the_worker_is_dead(
    cast, client, slow_host, slow_engine, make_created, workers, engine
):
    """The start never reaches the engine; pages answer meanwhile; the job page tells after."""
    workers.start()
    since = time.time()
    row = make_created(slow_host)
    slow_engine.hold_requests(START, seconds=1.5, deliver=False)
    job = request_action(Actor(cast.operator), row, "start")
    wait_for(
        lambda: running_with_intent(job),
        30,
        "the start runs, its intent on record",
        workers.log_tail,
    )
    slow_engine.wait_holding()  # the start is on its way to the engine
    workers.kill()

    client.force_login(cast.owner)
    response = client.get("/containers/")
    assert response.status_code == 200
    assert row.name in response.content.decode()
    client.force_login(cast.operator)
    page = client.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    assert "Running" in page.content.decode()
    wait_for(lambda: slow_engine.held, 10, "the held start was dropped")
    assert slow_engine.held == [(slow_engine.held[0][0], False)], slow_engine.held
    assert engine_state(engine, row.docker_id) == "created"

    workers.start()
    job = wait_done(job, workers)
    assert_recovered(job)
    assert_audit_after_loss(job, states("created"))
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert job.get_status_display() in page
    assert escape(job.message) in page
    if job.status == Job.Status.SUCCEEDED:
        assert engine_state(engine, row.docker_id) == "running"
        assert engine_events(row.docker_id, "start", since) == 1
    no_job_left_behind()


def test_worker_killed_during_volume_and_network_creates(
    cast, slow_host, slow_engine, workers, engine
):
    """Both creates are on their way to the engine when the worker dies: each made once,
    owned by the team, the lost intents say what the engine showed, the reruns take
    what the first run made (by the job's nonce) instead of failing on the name."""
    from resources.models import Network, Volume
    from resources.services import request_create as request_resource

    workers.start()
    vol, net = unique("flt-vol"), unique("flt-net")
    slow_engine.hold_requests(r"POST /v[\d.]+/(volumes|networks)/create", 2, deliver=True, count=2)
    try:
        made = [
            request_resource(Actor(cast.operator), kind, slow_host, cast.alpha, name)
            for kind, name in (("volume", vol), ("network", net))
        ]
        wait_for(
            lambda: all(running_with_intent(j) for j in made),
            30,
            "both creates run, their intents on record",
            workers.log_tail,
        )
        slow_engine.wait_holding(count=2)  # both requests are on their way to the engine
        workers.kill()
        workers.start()

        done = [wait_done(j, workers) for j in made]
        for job in done:
            assert_recovered(job)
            entries = intents(job)
            assert entries[0].result == AuditEntry.Result.UNKNOWN, entries[0].message
            assert "the engine reports" in entries[0].message, entries[0].message
            if job.status == Job.Status.SUCCEEDED:
                assert [e.result for e in entries[1:]] == [AuditEntry.Result.OK]
            else:
                assert entries[1:] == [], [(e.result, e.message) for e in entries[1:]]
        assert [j.status for j in done] == [Job.Status.SUCCEEDED] * 2, [j.message for j in done]
        assert "made by this job" in intents(done[0])[0].message
        assert engine.api.inspect_volume(vol)["Name"] == vol
        nets = [n for n in engine.api.networks(names=[net]) if n["Name"] == net]
        assert len(nets) == 1, nets  # one network: the rerun did not make a second
        assert Volume.objects.get(host=slow_host, name=vol, removed_at__isnull=True).team == (
            cast.alpha
        )
        row = Network.objects.get(host=slow_host, name=net, removed_at__isnull=True)
        assert (row.team, row.docker_id, done[1].created_id) == (
            cast.alpha,
            nets[0]["Id"],
            nets[0]["Id"],
        )
        no_job_left_behind()
    finally:
        for remove in (
            lambda: engine.api.remove_volume(vol),
            lambda: engine.api.remove_network(net),
        ):
            try:
                remove()
            except docker.errors.NotFound:
                pass


def test_worker_killed_during_a_stack_deploy(cast, slow_host, slow_engine, workers, engine):
    """Compose is creating the stack's container when the worker dies: the job ends (a
    rerun converges), one container per service, the lost intent says what the engine
    showed, and no compose process outlives the test."""
    from stacks.models import Stack
    from stacks.services import create_stack
    from stacks.services import request_action as request_stack_action
    from tests.stacks.conftest import remove_project

    workers.start()
    compose_text = f"""
services:
  app:
    image: {settings.TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels: {{dockyard.test: "1"}}
"""
    folders_before = set(glob.glob(f"{tempfile.gettempdir()}/dockyard-compose-*"))
    slow_engine.hold_requests(CREATE, seconds=2, deliver=True)
    stack, job = create_stack(
        Actor(cast.operator),
        host=slow_host,
        team=cast.alpha,
        name=unique("flt-stack"),
        source=Stack.Source.EDITOR,
        compose_text=compose_text,
    )
    try:
        wait_for(
            lambda: running_with_intent(job),
            30,
            "the deploy runs, its intent on record",
            workers.log_tail,
        )
        slow_engine.wait_holding(timeout=60)  # compose's create is on its way to the engine
        killed = workers.proc.pid
        assert processes_naming(stack.project), "compose runs the deploy"
        workers.kill()
        # Compose (its own session) dies with its worker, not after the held request.
        wait_for(lambda: not processes_naming(stack.project), 1, "compose died with the worker")
        workers.start()

        job = wait_done(job, workers)
        assert_recovered(job)
        listed = engine.api.containers(
            all=True, filters={"label": f"com.docker.compose.project={stack.project}"}
        )
        assert [(c["Names"], c["State"]) for c in listed] == [
            ([f"/{stack.project}-app-1"], "running")
        ], listed  # one container for the one service: the rerun made no second
        entries = intents(job)
        assert [(e.action, e.result) for e in entries][0] == (
            "stack.deploy",
            AuditEntry.Result.UNKNOWN,
        )
        assert f"the engine reports project {stack.project}: " in entries[0].message
        if job.status == Job.Status.SUCCEEDED:
            assert [e.result for e in entries[1:]] == [AuditEntry.Result.OK]
        assert Stack.objects.get(pk=stack.pk).running_job is None  # the stack is free again
        no_job_left_behind()
        # The killed worker's compose folder (registry logins) went with the rerun's first;
        # any other is a live process's own (other tests may be running compose now).
        left = set(glob.glob(f"{tempfile.gettempdir()}/dockyard-compose-*")) - folders_before
        owners = [os.path.basename(f).split("-")[2] for f in left]
        assert all(o.isdigit() and os.path.exists(f"/proc/{o}") for o in owners), left
        assert str(killed) not in owners, left
        assert not processes_naming(stack.project), "a compose process outlived its worker"

        # A restart whose worker was lost after the engine restarted the container: the
        # rerun sees it done and does not restart it a second time.
        (app,) = listed
        since = time.time()
        restart = request_stack_action(Actor(cast.operator), stack, "restart")
        Job.objects.filter(pk=restart.pk).update(
            status=Job.Status.RUNNING, attempts=1, lease_until=timezone.now() + timedelta(60)
        )
        record(
            Actor(cast.operator),
            "stack.restart",
            target=stack,
            target_type="stack",
            result=AuditEntry.Result.PENDING,
            job=restart,
        )
        engine.api.restart(app["Id"], timeout=5)  # what the lost worker's compose did
        Job.objects.filter(pk=restart.pk).update(lease_until=timezone.now())
        restart = wait_done(restart, workers)
        assert restart.status == Job.Status.SUCCEEDED, restart.message
        assert (
            restart.message == "Restarted all services (already). (ran again after a lost worker)"
        )
        assert engine_events(app["Id"], "restart", since) == 1
        assert [e.result for e in intents(restart)] == [
            AuditEntry.Result.UNKNOWN,
            AuditEntry.Result.OK,
        ]
        no_job_left_behind()
    finally:
        remove_project(engine, stack.project)
