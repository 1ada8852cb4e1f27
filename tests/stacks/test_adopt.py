"""Compose projects made outside the dashboard: listed to dashboard admins only, read-only,
until an admin adopts one for a team; then the team's operators act on it by its name."""

import subprocess

import pytest
from django.conf import settings
from django.urls import reverse

from containers.models import Container
from containers.services import sync_host
from dashboard.models import AuditEntry
from stacks import compose
from stacks.models import Stack
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique

from .conftest import deployed, project_containers, remove_project

pytestmark = [pytest.mark.live]


@pytest.fixture
def outside_project(tmp_path, docker_client, local_host):
    project = unique("ext")
    (tmp_path / "compose.yaml").write_text(
        f"""services:
  job:
    image: {settings.TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels: {{{TEST_LABEL}: "1", {RUN_LABEL}: "{settings.RUN_ID}"}}
"""
    )
    env = {"PATH": compose.SAFE_PATH, "HOME": str(tmp_path), "DOCKER_HOST": local_host.url}
    subprocess.run(
        [compose.binary(), "-p", project, "up", "-d"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    sync_host(local_host)
    yield project
    remove_project(docker_client, project)


def test_admin_adopts_an_outside_project_for_a_team(
    cast, login, local_host, outside_project, celery_worker, stack_cleanup, docker_client
):
    listing = login(cast.operator).get(reverse("stacks:list")).content.decode()
    assert outside_project not in listing  # only dashboard admins see external projects
    assert (
        login(cast.operator)
        .post(
            reverse("stacks:adopt"),
            {"host": local_host.pk, "project": outside_project, "team": cast.alpha.pk},
        )
        .status_code
        == 403
    )

    admin = login(cast.admin)
    assert outside_project in admin.get(reverse("stacks:list")).content.decode()
    response = admin.post(
        reverse("stacks:adopt"),
        {"host": local_host.pk, "project": outside_project, "team": cast.alpha.pk},
    )
    stack = Stack.objects.get(project=outside_project)
    assert response.status_code == 302 and stack.source == "external"
    ids = list(project_containers(docker_client, stack))
    assert list(Container.objects.filter(docker_id__in=ids).values_list("team", flat=True)) == [
        cast.alpha.pk
    ]
    assert AuditEntry.objects.filter(action="stack.adopt", username="admin").exists()

    operator = login(cast.operator)
    operator.post(reverse("stacks:action", args=[stack.pk, "stop"]))
    from dashboard.models import Job

    deployed(Job.objects.get(params__stack_id=stack.pk, kind="stack.action"))
    assert [st for _s, st in project_containers(docker_client, stack).values()] == ["exited"]
    response = operator.post(reverse("stacks:action", args=[stack.pk, "redeploy"]), follow=True)
    assert "An adopted project has no compose file here" in response.content.decode()
