"""Through the API only, against the real engine and worker: create a container, wait
for its job, read its logs (once and followed), remove it; the audit says "via API token"."""

import time

import pytest
from asgiref.sync import async_to_sync

from containers.inspect import MASK
from dashboard.models import AuditEntry
from tests.api.conftest import streamed
from tests.support.helpers import TEST_LABEL, engine_state, unique

pytestmark = [pytest.mark.live]


def wait(api, job_url, seconds=30):
    started = time.monotonic()
    response = api.get(job_url, wait=seconds)
    assert response.status_code == 200
    job = response.json()
    assert job["done"], job
    return job, time.monotonic() - started


def test_create_wait_logs_remove_through_the_api(
    cast, local_host, api, engine_cleanup, celery_worker, login, settings
):
    settings.API_LOG_FOLLOW_SECONDS = 2.0
    client = api(cast.operator, name="ci-pipeline")
    name = unique("api")
    created = client.post(
        "/api/v1/containers/",
        {
            "host": "local",
            "team": "alpha",
            "image": settings.TEST_IMAGE,
            "name": name,
            "command": "sh -c 'echo hello-from-api; echo oops >&2; "
            "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done'",
            "env": {"API_KEY": "k-123-secret", "MODE": "test"},
            "labels": {TEST_LABEL: "1"},
        },
    )
    assert created.status_code == 202, created.content
    job, _ = wait(client, created.json()["url"])
    assert job["status"] == "succeeded", job["message"]
    container_url = job["container"]
    assert container_url.startswith("/api/v1/containers/")
    assert engine_state(engine_cleanup, name) == "running"

    detail = client.get(container_url).json()
    assert detail["name"] == name and detail["state"] == "running"
    env = {e["key"]: (e["value"], e["masked"]) for e in detail["inspect"]["env"]}
    assert env["MODE"] == ("test", False)
    assert env["API_KEY"] == (MASK, True)  # a secret-looking key: masked for everybody
    assert "k-123-secret" not in str(detail)

    time.sleep(0.5)
    text = streamed(client.get(f"{container_url}logs/", tail="all"))
    assert "stdout hello-from-api" in text and "stderr oops" in text
    only = streamed(client.get(f"{container_url}logs/", tail="all", q="oops", ts="0"))
    assert only == "oops\n"
    download = client.get(f"{container_url}logs/", download="1")
    assert download["Content-Disposition"] == f'attachment; filename="{name}.log"'

    # Followed: new lines keep coming until API_LOG_FOLLOW_SECONDS ends the stream.
    started = time.monotonic()
    followed = streamed(client.get(f"{container_url}logs/", tail="100", follow="1"))
    took = time.monotonic() - started
    assert 1.5 < took < 10
    ticks = [line for line in followed.splitlines() if "tick-" in line]
    assert int(ticks[-1].rsplit("-", 1)[1]) > int(text.split("tick-")[-1].split()[0])

    removed = client.post(f"{container_url}remove/", {"force": True})
    assert removed.status_code == 202
    job, _ = wait(client, removed.json()["url"])
    assert job["status"] == "succeeded", job["message"]
    assert engine_state(engine_cleanup, name) == "absent"

    entries = AuditEntry.objects.filter(target_name=name).order_by("at")
    assert [e.action for e in entries] == ["container.create", "container.remove"]
    assert {e.api_token_name for e in entries} == {"ci-pipeline"}
    page = login(cast.admin).get("/audit/", {"q": name}).content.decode()
    assert "via API token ci-pipeline" in page
    via_api = client.get("/api/v1/audit/", q=name).json()["results"]
    assert {e["via_token"] for e in via_api} == {"ci-pipeline"}
    assert "k-123-secret" not in str(via_api)


def test_wait_returns_as_soon_as_the_job_ends_or_when_the_wait_does(
    cast, local_host, api, make_container, celery_worker
):
    target = make_container(owner=cast.owner, team=cast.alpha)
    client = api(cast.owner)
    job_url = client.post(f"/api/v1/containers/{target.pk}/kill/").json()["url"]
    job, took = wait(client, job_url, seconds=20)
    assert job["status"] == "succeeded" and took < 10
    assert client.get(job_url, wait="61").status_code == 200  # capped at 60, not refused
    assert client.get(job_url, wait="soon").status_code == 400


def test_a_job_still_queued_answers_when_the_wait_ends(cast, local_host, api, make_container,
                                                      no_task_queue):  # fmt: skip
    target = make_container(owner=cast.owner, team=cast.alpha)
    client = api(cast.owner)
    job_url = client.post(f"/api/v1/containers/{target.pk}/stop/").json()["url"]
    started = time.monotonic()
    job = client.get(job_url, wait="1").json()
    assert 0.9 < time.monotonic() - started < 5
    assert (job["status"], job["done"]) == ("queued", False)


def test_an_unreachable_engine_is_a_502_with_the_reason(cast, api, make_container, local_host):
    target = make_container(owner=cast.owner, team=cast.alpha)
    local_host.url = "unix:///nonexistent/docker.sock"
    local_host.save()
    response = api(cast.owner).get(f"/api/v1/containers/{target.pk}/logs/")
    assert response.status_code == 502
    assert "nonexistent" in response.json()["error"] or "reach" in response.json()["error"]


TICKING = "sh -c 'i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done'"


def test_a_followed_log_stops_soon_after_its_reader_loses_the_team(
    cast, api, make_container, settings
):
    """Like the websockets: removed from the team, the reader stops receiving within
    a few seconds, not when API_LOG_FOLLOW_SECONDS runs out."""
    from channels.db import database_sync_to_async

    from dashboard.models import Membership

    settings.API_LOG_FOLLOW_SECONDS, settings.ACCESS_RECHECK_SECONDS = 30.0, 0.5
    container = make_container(owner=cast.operator, team=cast.alpha, command=TICKING)
    response = api(cast.operator).get(f"/api/v1/containers/{container.pk}/logs/", follow="1")
    assert response.status_code == 200

    async def read():
        parts = response.streaming_content
        first = await anext(parts)  # a line arrived: the reader was allowed
        remove = Membership.objects.filter(user=cast.operator, team=cast.alpha).delete
        await database_sync_to_async(remove)()
        removed_at, after = time.monotonic(), b""
        async for part in parts:
            after += part
        return first, time.monotonic() - removed_at, after

    first, took, after = async_to_sync(read)()

    assert b"tick-" in first
    assert took < 5  # the follow limit is 30 s
    assert after.count(b"tick-") < 25  # 0.2 s a line: it stopped within a few seconds
