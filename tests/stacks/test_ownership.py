"""Containers of a stack belong to its team because its deploys recorded their ids; a
container that only carries the stack's compose labels (forged with the CLI) is nobody's,
and Compose is not run on a project that holds one."""

import pytest
from django.conf import settings
from django.urls import reverse

from containers.models import Container
from containers.services import sync_host
from dashboard.audit import Actor
from stacks import services
from stacks.models import StackContainer
from tests.support.helpers import RUN_LABEL, TEST_LABEL, create_form_data, unique, wait_job

from .conftest import deployed, project_containers

pytestmark = [pytest.mark.live]

ONE_SERVICE = f"""
services:
  worker:
    image: {settings.TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def test_forged_project_container_is_not_given_to_the_team(
    cast, local_host, celery_worker, stack_cleanup, docker_client
):
    stack, job = services.create_stack(
        Actor(cast.owner),
        host=local_host,
        team=cast.alpha,
        name="app",
        source="editor",
        compose_text=ONE_SERVICE,
    )
    deployed(job)
    labels = {
        "com.docker.compose.project": stack.project,
        "com.docker.compose.service": "worker",
        "com.docker.compose.container-number": "2",
        "com.docker.compose.oneoff": "False",
        # Even the stack's own secret label, copied: it was not made by a deploy.
        "dockyard.stack": stack.container_nonce,
        TEST_LABEL: "1",
        RUN_LABEL: settings.RUN_ID,
    }
    forged = docker_client.containers.run(
        settings.TEST_IMAGE, ["sleep", "300"], detach=True, labels=labels, name=unique("forged")
    )
    sync_host(local_host)

    job = services.request_deploy(Actor(cast.owner), stack, "redeploy")
    job = wait_job(job, timeout=60)

    assert job.status == "failed"
    assert "carry this stack's compose project label but were not created by it" in job.message
    row = Container.objects.get(docker_id=forged.id)
    assert row.team is None and row.owner is None
    assert not StackContainer.objects.filter(container=row).exists()
    assert docker_client.api.inspect_container(forged.id)["State"]["Running"]  # left alone
    # Once an admin removed it, the stack deploys again.
    forged.remove(force=True)
    deployed(services.request_deploy(Actor(cast.owner), stack, "redeploy"))
    services_running = [
        s for s, st in project_containers(docker_client, stack).values() if st == "running"
    ]
    assert services_running == ["worker"]


def test_container_form_refuses_compose_labels(cast, login, local_host):
    data = create_form_data(local_host, cast.alpha, unique("c"))
    data["labels"] += "\ncom.docker.compose.project=dy-shop-abc123"
    response = login(cast.operator).post(reverse("containers:new"), data)
    assert response.status_code == 422
    assert "com.docker.compose." in " ".join(response.context["form"].errors["labels"])


def test_taken_port_is_refused_and_nothing_is_created(
    cast, login, local_host, make_container, stack_cleanup, docker_client
):
    from tests.support.registry import free_port

    port = free_port()
    make_container(owner=cast.outsider, team=cast.beta, ports={"8080/tcp": port})
    compose_text = ONE_SERVICE + f'    ports: ["{port}:8080"]\n'
    response = login(cast.operator).post(
        reverse("stacks:new"),
        {
            "name": "p",
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "source": "editor",
            "compose": compose_text,
        },
    )
    assert response.status_code == 422
    assert (
        f"Service 'worker', key 'ports': host port {port}/tcp is already in use on local"
        in " ".join(response.context["form"].non_field_errors())
    )


def test_unknown_image_fails_cleanly_and_leaves_nothing(
    cast, local_host, celery_worker, stack_cleanup, docker_client
):
    compose_text = "services:\n  app:\n    image: dockyard-test/no-such-image:1\n"
    stack, job = services.create_stack(
        Actor(cast.owner),
        host=local_host,
        team=cast.alpha,
        name="img",
        source="editor",
        compose_text=compose_text,
    )
    job = wait_job(job, timeout=90)
    assert job.status == "failed"
    assert "no-such-image" in job.message
    assert project_containers(docker_client, stack) == {}
    assert not docker_client.api.networks(
        filters={"label": f"com.docker.compose.project={stack.project}"}
    )


def test_unknown_service_is_a_clear_message(cast, login, local_host, celery_worker, stack_cleanup):
    stack, job = services.create_stack(
        Actor(cast.owner),
        host=local_host,
        team=cast.alpha,
        name="svc",
        source="editor",
        compose_text=ONE_SERVICE,
    )
    deployed(job)
    client = login(cast.owner)
    response = client.post(
        reverse("stacks:action", args=[stack.pk, "restart"]), {"service": "nope"}, follow=True
    )
    assert "There is no service &#x27;nope&#x27; in this stack." in response.content.decode()
    from dashboard.models import Job

    assert Job.objects.filter(kind="stack.action").count() == 0


def test_another_teams_image_is_refused_by_name_and_id(
    cast, local_host, celery_worker, stack_cleanup, docker_client
):
    # The same image check as the container form: a compose file cannot run beta's
    # private image, whatever it calls it; nothing is created.
    import io

    from images.services.sync import record_image

    tag = f"dyimg-{settings.RUN_ID}-other-private:1"
    dockerfile = f"FROM {settings.TEST_IMAGE}\nLABEL dockyard.test=1 beta.secret=1\n"
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True
    )
    try:
        record_image(docker_client.api, local_host, image.id, cast.beta, cast.outsider)
        for ref in (tag, image.id):
            stack, job = services.create_stack(
                Actor(cast.owner),
                host=local_host,
                team=cast.alpha,
                name=f"steal-{ref[-6:].replace(':', '')}",
                source="editor",
                compose_text=f"services:\n  app:\n    image: {ref}\n",
            )
            job = wait_job(job, timeout=90)
            assert job.status == "failed"
            assert "is not one of alpha's images" in job.message and "beta" not in job.message
            assert project_containers(docker_client, stack) == {}
    finally:
        docker_client.images.remove(image.id, force=True)
