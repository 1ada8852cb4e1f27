"""Deploy, scale, edit with a diff, redeploy, roll back and take down a two-service stack
through the pages, with the real engine and Compose; the engine matches after each step."""

import pytest
from django.urls import reverse

from containers.models import Container
from dashboard.models import AuditEntry
from stacks.models import Stack, StackContainer
from tests.support.registry import free_port

from .conftest import deployed, project_containers, two_services

pytestmark = [pytest.mark.live]


def latest_job(stack):
    from dashboard.models import Job

    return Job.objects.filter(params__stack_id=stack.pk).order_by("-pk").first()


def test_stack_lifecycle(cast, login, local_host, celery_worker, stack_cleanup, docker_client):
    client = login(cast.owner)
    port = free_port()
    response = client.post(
        reverse("stacks:new"),
        {
            "name": "shop",
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "source": "editor",
            "compose": two_services(port),
            "env": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stack = Stack.objects.get(name="shop")
    deployed(latest_job(stack))
    state = project_containers(docker_client, stack)
    assert sorted(s for s, _ in state.values()) == ["web", "worker"]
    assert all(st == "running" for _, st in state.values())
    # Every container of the project is the team's, recorded by id.
    rows = Container.objects.filter(docker_id__in=state)
    assert {c.team_id for c in rows} == {cast.alpha.pk}
    assert StackContainer.objects.filter(stack=stack).count() == 2

    page = client.get(reverse("stacks:detail", args=[stack.pk]))
    assert page.status_code == 200
    assert b"worker" in page.content and b"running" in page.content

    # Scale the worker to 3.
    client.post(
        reverse("stacks:action", args=[stack.pk, "scale"]), {"service": "worker", "replicas": "3"}
    )
    deployed(latest_job(stack))
    state = project_containers(docker_client, stack)
    assert sorted(s for s, _ in state.values()) == ["web", "worker", "worker", "worker"]

    # Edit: preview shows the diff and changes nothing; deploy makes version 2.
    new_file = two_services(port).replace(
        "while true; do sleep 1; done", "while true; do sleep 2; done"
    )
    preview = client.post(
        reverse("stacks:edit", args=[stack.pk]),
        {"compose": new_file, "env": "", "confirm": "preview"},
    )
    assert preview.status_code == 200
    assert b"diff-add" in preview.content and b"sleep 2" in preview.content
    assert stack.versions.count() == 1
    client.post(
        reverse("stacks:edit", args=[stack.pk]),
        {"compose": new_file, "env": "", "confirm": "deploy"},
    )
    deployed(latest_job(stack))
    stack.refresh_from_db()
    assert stack.current_version.number == 2
    workers = [i for i, (s, _) in project_containers(docker_client, stack).items() if s == "worker"]
    assert len(workers) == 3  # the scale is kept across deploys
    cmd = docker_client.api.inspect_container(workers[0])["Config"]["Cmd"]
    assert "sleep 2" in cmd[-1]

    # Roll back to version 1: the old command runs again.
    client.post(reverse("stacks:rollback", args=[stack.pk, 1]))
    deployed(latest_job(stack))
    stack.refresh_from_db()
    assert stack.current_version.number == 1
    workers = [i for i, (s, _) in project_containers(docker_client, stack).items() if s == "worker"]
    assert "sleep 1" in docker_client.api.inspect_container(workers[0])["Config"]["Cmd"][-1]

    # Stop one service, then take the stack down.
    client.post(reverse("stacks:action", args=[stack.pk, "stop"]), {"service": "web"})
    deployed(latest_job(stack))
    states = {s: st for s, st in project_containers(docker_client, stack).values()}
    assert states["web"] == "exited" and states["worker"] == "running"
    client.post(reverse("stacks:action", args=[stack.pk, "down"]))
    deployed(latest_job(stack))
    assert project_containers(docker_client, stack) == {}
    actions = set(AuditEntry.objects.filter(target_type="stack").values_list("action", flat=True))
    assert {
        "stack.create",
        "stack.deploy",
        "stack.scale",
        "stack.redeploy",
        "stack.rollback",
        "stack.stop",
        "stack.down",
    } <= actions
