"""The CI/CD pipeline with a private registry (real docker-registry with htpasswd): a git
stack whose service is built from the repository and pushed to the stack's registry, and a
service pulled from that registry with the team's stored credentials. A push to the branch
and a signed webhook call rebuild, push, pull and redeploy, as one job."""

import base64
import json
import urllib.request

import pytest
from django.conf import settings

from dashboard.audit import Actor
from dashboard.models import Job
from registries import services as registry_services
from stacks import services
from stacks.webhooks import signature
from tests.support.helpers import RUN_LABEL, TEST_LABEL

from .conftest import deployed, project_containers
from .test_git_webhook import post_hook

pytestmark = [pytest.mark.live]


def compose_file(registry):
    return f"""services:
  app:
    build: .
    image: {registry.url}/alpha/app:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; cat /version.txt; while true; do sleep 1; done"]
  base:
    image: {registry.url}/alpha/base:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


DOCKERFILE = f"FROM {settings.TEST_IMAGE}\nCOPY version.txt /version.txt\nLABEL {TEST_LABEL}=1\n"


def tags(registry_server, name):
    request = urllib.request.Request(f"{registry_server.http_url}/v2/{name}/tags/list")
    token = base64.b64encode(
        f"{registry_server.username}:{registry_server.password}".encode()
    ).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["tags"]


def test_push_builds_pushes_pulls_and_redeploys(
    cast,
    local_host,
    registry_server,
    repo,
    celery_worker,
    stack_cleanup,
    docker_client,
    client,
):
    registry = registry_services.save_registry(
        Actor.system(),
        name="private",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
        teams=[cast.alpha],
    )
    auth = registry_services.auth_config_for(registry)
    base = f"{registry_server.url}/alpha/base:1"
    app = f"{registry_server.url}/alpha/app:latest"
    stack_cleanup.extend([base, app])
    # An image only the registry has: the deploy must pull it with the team's credentials.
    docker_client.api.tag(settings.TEST_IMAGE, f"{registry_server.url}/alpha/base", "1")
    for line in docker_client.api.push(
        f"{registry_server.url}/alpha/base", "1", auth_config=auth, stream=True, decode=True
    ):
        assert "error" not in line, line
    docker_client.api.remove_image(base)

    repo.commit(
        {
            "compose.yaml": compose_file(registry_server),
            "Dockerfile": DOCKERFILE,
            "version.txt": "one\n",
        }
    )
    stack, job = services.create_stack(
        Actor(cast.owner),
        host=local_host,
        team=cast.alpha,
        name="pipeline",
        source="git",
        git_url=repo.url,
        git_branch="main",
        git_path="compose.yaml",
        registry=registry,
    )
    deployed(job, timeout=120)
    state = {s: st for s, st in project_containers(docker_client, stack).values()}
    assert state == {"app": "running", "base": "running"}
    docker_client.api.inspect_image(base)  # pulled, with the stored credentials

    commit = repo.commit({"version.txt": "two\n"})
    body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
    headers = {
        "X_Hub_Signature_256": signature(stack.webhook_secret, body),
        "X_GitHub_Delivery": "p-1",
    }
    response = post_hook(client, stack, body, **headers)
    assert response.status_code == 202
    job = deployed(response.json()["job"], timeout=120)
    for step in (
        "Fetching main",
        "docker-compose build app",
        "docker-compose push app",
        "docker-compose pull",
        "docker-compose up -d",
    ):
        assert step in job.output, job.output
    assert tags(registry_server, "alpha/app") == ["latest"]
    app_id = [i for i, (s, _) in project_containers(docker_client, stack).items() if s == "app"][0]
    logs = docker_client.api.logs(app_id).decode()
    assert "two" in logs
    # The registry password reached no job, output or audit entry.
    assert not any(
        registry_server.password in json.dumps(j.params) + j.output for j in Job.objects.all()
    )
    # Built images carry the test label through the Dockerfile; the run label is on containers.
    assert (
        docker_client.api.inspect_container(app_id)["Config"]["Labels"][RUN_LABEL]
        == settings.RUN_ID
    )
