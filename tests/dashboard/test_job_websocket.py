"""The job websocket (/ws/jobs/<id>/) through the real ASGI stack and the real Redis layer.

Origin check, session auth, access on connect and on every update (a user
deactivated while watching is cut off).
"""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from containers.models import Container
from dashboard.asgi import application
from dashboard.jobs import publish
from dashboard.models import Host, Job

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1")
TIMEOUT = 5


def session_cookie(user):
    """A real session, made by logging in, as the browser would send it."""
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


def communicator(job, headers, query=""):
    return WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/{query}", headers=headers)


@pytest.fixture
def job(cast):
    return Job.objects.create(
        kind="container.action",
        user=cast.owner,
        target="container web-1",
        params={"action": "stop"},
    )


def change(job, **fields):
    """Update the row as the worker does, then tell the subscribers."""
    Job.objects.filter(pk=job.pk).update(**fields)
    publish(Job.objects.get(pk=job.pk))


def connect_result(job, headers):
    async def attempt():
        comm = communicator(job, headers)
        connected, code = await comm.connect(timeout=TIMEOUT)
        await comm.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def test_anonymous_connection_is_refused(job):
    connected, code = connect_result(job, [ORIGIN])
    assert (connected, code) == (False, 4401)


def test_stale_session_cookie_is_anonymous(job):
    connected, code = connect_result(job, [ORIGIN, (b"cookie", b"sessionid=not-a-session")])
    assert (connected, code) == (False, 4401)


@pytest.mark.parametrize(
    "origin", [b"http://evil.example.com", b"http://127.0.0.1.evil.example.com", None]
)
def test_foreign_or_missing_origin_is_refused(cast, job, origin):
    headers = [session_cookie(cast.owner)]
    if origin is not None:
        headers.append((b"origin", origin))
    connected, _ = connect_result(job, headers)
    assert connected is False


@pytest.mark.parametrize("who", ["outsider", "operator", "viewer"])
def test_someone_elses_job_is_refused(cast, job, who):
    # Jobs are personal: even a teammate does not watch the owner's jobs.
    connected, code = connect_result(job, [ORIGIN, session_cookie(getattr(cast, who))])
    assert (connected, code) == (False, 4404)


def test_unknown_job_is_refused(cast, job):
    missing = Job(pk=job.pk + 1000)
    connected, code = connect_result(missing, [ORIGIN, session_cookie(cast.owner)])
    assert (connected, code) == (False, 4404)


def test_owner_gets_the_job_on_connect_and_each_update(cast, job):
    headers = [ORIGIN, session_cookie(cast.owner)]

    async def watch():
        comm = communicator(job, headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        first = await comm.receive_from(timeout=TIMEOUT)
        await sync_to_async(change)(job, status=Job.Status.RUNNING)
        running = await comm.receive_from(timeout=TIMEOUT)
        await sync_to_async(change)(
            job, status=Job.Status.FAILED, message="No such container: <web-1>"
        )
        failed = await comm.receive_from(timeout=TIMEOUT)
        await comm.disconnect()
        return first, running, failed

    first, running, failed = async_to_sync(watch)()
    for html in (first, running, failed):
        assert f'id="job-{job.pk}"' in html and 'hx-swap-oob="true"' in html
        assert "container web-1" in html
    assert "Queued" in first and 'class="job queued"' in first
    assert "Running" in running and "Queued" not in running
    assert "Failed" in failed
    assert "No such container: &lt;web-1&gt;" in failed  # engine text is escaped


def test_admin_may_watch_any_job(cast, job):
    headers = [ORIGIN, session_cookie(cast.admin)]

    async def watch():
        comm = communicator(job, headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        html = await comm.receive_from(timeout=TIMEOUT) if connected else ""
        await comm.disconnect()
        return connected, html

    connected, html = async_to_sync(watch)()
    assert connected and f'id="job-{job.pk}"' in html


def test_finished_job_also_updates_the_container_row(cast, job):
    host = Host.objects.create(name="h1", url="unix:///tmp/nope.sock", all_teams=True)
    box = Container.objects.create(
        host=host, docker_id="b" * 64, name="web-1", state="exited", team=cast.alpha
    )
    Job.objects.filter(pk=job.pk).update(container=box)
    headers = [ORIGIN, session_cookie(cast.owner)]

    async def watch(query, row_expected=True):
        comm = communicator(job, headers, query)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        first = await comm.receive_from(timeout=TIMEOUT)
        await sync_to_async(change)(job, status=Job.Status.SUCCEEDED)
        done = await comm.receive_from(timeout=TIMEOUT)
        # The list page asked for the row: it comes as a message of its own (a <tr>
        # after a <div> in one fragment would be dropped by the browser's parser).
        row = await comm.receive_from(timeout=TIMEOUT) if query and row_expected else ""
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        await sync_to_async(change)(job, status=Job.Status.RUNNING)
        return first, done, row

    first, done, row = async_to_sync(watch)("?follow=row")
    assert f'id="container-{box.pk}"' not in first  # only once the job is done
    assert "Succeeded" in done and f'id="container-{box.pk}"' not in done
    assert row.startswith("<tr") and f'id="container-{box.pk}"' in row and "web-1" in row
    # A page that did not ask (the job page) gets the job row only.
    first, done, row = async_to_sync(watch)("")
    assert "Succeeded" in done and "<tr" not in done
    # The host no longer granted to alpha: the container is out of sight, so no row.
    Host.objects.filter(pk=host.pk).update(all_teams=False)
    first, done, row = async_to_sync(watch)("?follow=row", row_expected=False)
    assert "Succeeded" in done and f'id="container-{box.pk}"' not in first + done


def test_user_deactivated_while_watching_is_cut_off(cast, job):
    headers = [ORIGIN, session_cookie(cast.owner)]

    def deactivate_and_update():
        type(cast.owner).objects.filter(pk=cast.owner.pk).update(is_active=False)
        change(job, status=Job.Status.SUCCEEDED, message="secret result")

    async def watch():
        comm = communicator(job, headers)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        await comm.receive_from(timeout=TIMEOUT)
        await sync_to_async(deactivate_and_update)()
        output = await comm.receive_output(timeout=TIMEOUT)
        nothing_more = await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()  # what the browser does when the server closes
        return output, nothing_more

    output, nothing_more = async_to_sync(watch)()
    assert output["type"] == "websocket.close" and output["code"] == 4403
    assert "secret result" not in str(output)
    assert nothing_more


def test_deactivated_user_cannot_reconnect(cast, job):
    headers = [ORIGIN, session_cookie(cast.owner)]
    type(cast.owner).objects.filter(pk=cast.owner.pk).update(is_active=False)
    connected, _ = connect_result(job, headers)
    assert connected is False
