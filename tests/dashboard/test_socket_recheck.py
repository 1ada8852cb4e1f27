"""Breach 3: a demoted admin kept admin rights on open websockets.

Each re-check reads roles from the database; a role change pushes a re-check at
once, and a timer catches changes made behind the services' back. A demoted,
removed or deactivated user's socket is closed within seconds.
"""

import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from dashboard import services
from dashboard.asgi import application
from dashboard.audit import Actor
from dashboard.models import Job, Membership, Profile
from tests.dashboard.test_job_websocket import ORIGIN, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def others_job(cast):
    return Job.objects.create(kind="container.action", user=cast.owner, params={"action": "stop"})


def watch_until_closed(user, job, change, within):
    """Open the job socket as `user`, apply `change`, return seconds until the server closes it."""

    headers = [ORIGIN, session_cookie(user)]

    async def run():
        comm = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=headers)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        await comm.receive_from(timeout=5)  # the job's current state
        await database_sync(change)
        started = time.monotonic()
        while time.monotonic() - started < within:
            try:
                out = await comm.receive_output(timeout=within)
            except Exception:
                break
            if out["type"] == "websocket.close":
                return time.monotonic() - started
        await comm.disconnect()
        return None

    return async_to_sync(run)()


async def database_sync(fn):
    from channels.db import database_sync_to_async

    await database_sync_to_async(fn)()


def test_demoted_dashboard_admin_is_cut_off_at_once(cast, others_job, settings):
    settings.ACCESS_RECHECK_SECONDS = 60  # only the push can close it in time
    boss = cast.viewer
    Profile.objects.create(user=boss, dashboard_admin=True)

    took = watch_until_closed(
        boss,
        others_job,
        lambda: services.set_dashboard_admin(Actor.system(), boss, False),
        within=5,
    )

    assert took is not None and took < 5


def test_role_change_behind_the_services_back_is_caught_by_the_timer(cast, others_job, settings):
    settings.ACCESS_RECHECK_SECONDS = 1
    boss = cast.viewer
    Profile.objects.create(user=boss, dashboard_admin=True)

    took = watch_until_closed(
        boss,
        others_job,
        lambda: Profile.objects.filter(user=boss).update(dashboard_admin=False),
        within=5,
    )

    assert took is not None and took < 5


def test_owner_keeps_watching_their_own_job_after_leaving_the_team(cast, others_job, settings):
    """Jobs are their user's: losing a team role does not hide one's own job."""
    import asyncio

    from dashboard.jobs import publish

    settings.ACCESS_RECHECK_SECONDS = 0.5
    headers = [ORIGIN, session_cookie(cast.owner)]

    def finish():
        Job.objects.filter(pk=others_job.pk).update(status=Job.Status.SUCCEEDED)
        publish(Job.objects.get(pk=others_job.pk))

    async def run():
        comm = WebsocketCommunicator(application, f"/ws/jobs/{others_job.pk}/", headers=headers)
        assert (await comm.connect(timeout=5))[0]
        await comm.receive_from(timeout=5)
        await database_sync(lambda: Membership.objects.filter(user=cast.owner).delete())
        await asyncio.sleep(2)  # several timer re-checks
        await database_sync(finish)
        update = await comm.receive_from(timeout=5)
        await comm.disconnect()
        return update

    assert "Succeeded" in async_to_sync(run)()


def test_deactivated_user_is_cut_off(cast, others_job, settings):
    settings.ACCESS_RECHECK_SECONDS = 60

    took = watch_until_closed(
        cast.owner,
        others_job,
        lambda: services.set_user_active(Actor.system(), cast.owner, False),
        within=5,
    )

    assert took is not None and took < 5
