"""Two hosts: `local` (the first engine) and `h2` (a second engine in its own netns).

The list shows both; actions and creates reach the right engine only; stopping the
second engine makes h2 unreachable without disturbing local, and h2 comes back.
"""

import html
from datetime import timedelta

import docker
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from containers.models import Container
from containers.services.sync import RETRY_UNREACHABLE
from dashboard.models import AuditEntry, Host, Job
from tests.support.helpers import TEST_LABEL, engine_state, unique, wait_job

pytestmark = [pytest.mark.live, pytest.mark.two_hosts]

LOOP = "sh -c \"trap 'exit 0' TERM; while true; do sleep 1; done\""


@pytest.fixture
def h2_client(second_engine):
    client = docker.DockerClient(base_url=second_engine.url, version="1.41")
    yield client
    client.close()


@pytest.fixture
def second_host(second_host, cast):
    """h2 granted to team alpha only, as a dashboard admin grants a host."""
    second_host.teams.add(cast.alpha)
    return second_host


@pytest.fixture
def pair(cast, make_container, local_host, second_host):
    """A running container of team alpha on each host: (on local, on h2)."""
    here = make_container(owner=cast.owner, team=cast.alpha, name=unique("here"))
    there = make_container(
        owner=cast.owner, team=cast.alpha, host=second_host, name=unique("there")
    )
    return here, there


def page_text(response):
    return html.unescape(strip_tags(response.content.decode()))


def listed(response):
    """{container pk: host name} of the rows the list page rendered."""
    assert response.status_code == 200
    return {c.pk: c.host.name for c, _ in response.context["rows"]}


def act(web, container, action, **data):
    """Post an action through the view; returns the finished Job."""
    response = web.post(reverse("containers:action", args=[container.pk, action]), data)
    assert response.status_code == 302
    job = wait_job(Job.objects.filter(kind="container.action").latest("pk"))
    assert (job.container_id, job.host_id, job.params["action"]) == (
        container.pk,
        container.host_id,
        action,
    )
    return job


def test_list_shows_both_hosts_and_the_host_filter_narrows_to_each(
    cast, login, local_host, second_host, pair, docker_client, h2_client
):
    here, there = pair
    # Two engines, two containers: each exists on its own engine only.
    assert engine_state(docker_client, here.docker_id) == "running"
    assert engine_state(h2_client, here.docker_id) == "absent"
    assert engine_state(h2_client, there.docker_id) == "running"
    assert engine_state(docker_client, there.docker_id) == "absent"
    web = login(cast.owner)

    response = web.get(reverse("containers:list"))
    rows = listed(response)
    assert (rows.get(here.pk), rows.get(there.pk)) == ("local", "h2")
    assert here.name in response.content.decode()
    assert there.name in response.content.decode()

    for host, shown, hidden in [(local_host, here, there), (second_host, there, here)]:
        response = web.get(reverse("containers:list"), {"host": host.pk})
        rows = listed(response)
        assert shown.pk in rows
        assert hidden.pk not in rows
        assert set(rows.values()) == {host.name}
        assert hidden.name not in response.content.decode()


def test_actions_through_the_views_reach_the_right_engine_only(
    cast, login, pair, celery_worker, docker_client, h2_client
):
    here, there = pair
    web = login(cast.owner)
    # (container, action, POST data, expected (local state, h2 state) afterwards)
    steps = [
        (there, "stop", {}, ("running", "exited")),
        (there, "start", {}, ("running", "running")),
        (here, "stop", {}, ("exited", "running")),
        (there, "remove", {"force": "on"}, ("exited", "absent")),
        (here, "remove", {}, ("absent", "absent")),
    ]
    for container, action, data, (want_here, want_there) in steps:
        job = act(web, container, action, **data)
        assert job.status == Job.Status.SUCCEEDED, f"{action} {container.name}: {job.message}"
        got = (
            engine_state(docker_client, here.docker_id),
            engine_state(h2_client, there.docker_id),
        )
        assert got == (want_here, want_there), f"after {action} on {container.host.name}"

    here.refresh_from_db()
    there.refresh_from_db()
    assert here.removed_at is not None and there.removed_at is not None
    audit = AuditEntry.objects.filter(action__startswith="container.").order_by("at", "id")
    assert [(e.action, e.host_name, e.target_name) for e in audit] == [
        ("container.stop", "h2", there.name),
        ("container.start", "h2", there.name),
        ("container.stop", "local", here.name),
        ("container.remove", "h2", there.name),
        ("container.remove", "local", here.name),
    ]


def test_create_through_the_form_on_h2_puts_the_container_on_h2_only(
    cast, login, local_host, second_host, celery_worker, docker_client, h2_client, engine_cleanup
):
    web = login(cast.owner)
    name = unique("onh2")
    data = {
        "host": second_host.pk,
        "team": cast.alpha.pk,
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": LOOP,
        "restart": "no",
        "labels": f"{TEST_LABEL}=1",
    }

    response = web.post(reverse("containers:new"), data)

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert job.host == second_host
    row = Container.objects.get(name=name)
    assert (row.host, row.owner, row.team) == (second_host, cast.owner, cast.alpha)
    assert engine_state(h2_client, row.docker_id) == "running"
    assert h2_client.containers.get(name).id == row.docker_id
    assert docker_client.containers.list(all=True, filters={"name": name}) == []


def test_stopped_second_engine_shows_unreachable_while_local_keeps_working(
    cast, login, local_host, second_host, second_engine, pair, celery_worker, docker_client
):
    here, there = pair
    web = login(cast.owner)

    second_engine.stop()  # its containers exit on SIGTERM, so this takes about a second
    assert not second_engine.running()

    response = web.get(reverse("containers:list"))
    rows = listed(response)
    assert (rows.get(here.pk), rows.get(there.pk)) == ("local", "h2")  # h2's as last seen
    second_host.refresh_from_db()
    assert second_host.state == Host.State.UNREACHABLE
    assert second_host.last_error.startswith(f"Host h2 is unreachable ({second_engine.url}): "), (
        second_host.last_error
    )
    assert f"Host h2 is unreachable: {second_host.last_error}" in page_text(response)
    local_host.refresh_from_db()
    assert local_host.state == Host.State.REACHABLE

    response = web.get(reverse("containers:detail", args=[there.pk]))
    assert response.status_code == 200
    assert "Live details unavailable: Host h2 is unreachable" in page_text(response)

    job = act(web, here, "stop")
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert engine_state(docker_client, here.docker_id) == "exited"

    job = act(web, there, "stop")
    assert job.status == Job.Status.FAILED
    assert job.message.startswith(f"Host h2 is unreachable ({second_engine.url}): ")
    assert f"Host h2 is unreachable ({second_engine.url})" in page_text(
        web.get(reverse("job", args=[job.pk]))
    )
    entry = AuditEntry.objects.filter(action="container.stop", target_name=there.name).get()
    assert (entry.result, entry.message) == ("failed", job.message)
    there.refresh_from_db()
    assert (there.state, there.removed_at) == ("running", None)  # last seen, not guessed

    second_engine.start()
    # A host that failed moments ago is not asked again for a while (pages stay fast
    # while an engine is down): let that while pass, then the next list asks again.
    Host.objects.filter(pk=second_host.pk).update(
        last_checked=timezone.now() - RETRY_UNREACHABLE - timedelta(seconds=1)
    )
    response = web.get(reverse("containers:list"))
    assert there.pk in listed(response)
    assert "Host h2 is unreachable" not in page_text(response)
    second_host.refresh_from_db()
    assert (second_host.state, second_host.last_error) == (Host.State.REACHABLE, "")
    there.refresh_from_db()
    assert there.state == "exited"  # the engine stopped it on its way down


def test_a_host_not_granted_to_the_team_hides_its_containers_and_refuses_creates(
    cast, login, local_host, second_host, pair, docker_client, h2_client
):
    here, there = pair
    # h2 goes to beta instead: alpha's container there drops out of alpha's sight.
    second_host.teams.set([cast.beta])
    web = login(cast.owner)
    rows = listed(web.get(reverse("containers:list")))
    assert here.pk in rows and there.pk not in rows
    assert web.get(reverse("containers:list"), {"host": second_host.pk}).context["rows"] == []
    assert web.get(reverse("containers:detail", args=[there.pk])).status_code == 404
    response = web.post(reverse("containers:action", args=[there.pk, "stop"]))
    assert response.status_code == 404
    assert web.get(reverse("host_detail", args=[second_host.pk])).status_code == 404
    name = unique("refused")
    data = {
        "host": second_host.pk,
        "team": cast.alpha.pk,
        "image": settings.TEST_IMAGE,
        "name": name,
        "command": LOOP,
        "restart": "no",
        "labels": f"{TEST_LABEL}=1",
    }
    response = web.post(reverse("containers:new"), data)
    assert response.status_code == 422
    assert not Job.objects.exists()
    assert h2_client.containers.list(all=True, filters={"name": name}) == []
    assert engine_state(h2_client, there.docker_id) == "running"  # untouched
    # Beta's member now sees the host, but not alpha's container on it.
    outsider = login(cast.outsider)
    assert outsider.get(reverse("host_detail", args=[second_host.pk])).status_code == 200
    assert there.pk not in listed(outsider.get(reverse("containers:list")))
    assert outsider.get(reverse("containers:detail", args=[there.pk])).status_code == 404
    # A dashboard admin still sees everything on every host.
    assert there.pk in listed(login(cast.admin).get(reverse("containers:list")))
