"""Stacks through the API: one real deploy end to end (create, wait on the job, scale,
down) on the engine with Compose; the pages' access matrix on every endpoint; tokens
narrowed by read-only and team; a policy refusal as a JSON 400 naming service and key."""

import pytest
from django.conf import settings

from dashboard.models import Job
from stacks import services
from stacks.models import Stack
from tests.stacks.conftest import (  # noqa: F401  (fixtures used here)
    project_containers,
    stack_cleanup,
    stacks_root,
    two_services,
)
from tests.support.registry import free_port

pytestmark = [pytest.mark.live]

FILE = f"services:\n  app:\n    image: {settings.TEST_IMAGE}\n    command: ['sleep', '60']\n"
WRITERS = {"owner", "operator", "teamadmin", "dashadmin", "admin"}


def wait_done(client, url):
    """GET the job URL with ?wait=60 until the job is done; its final JSON."""
    for _ in range(3):
        body = client.get(url, wait=60).json()
        if body["done"]:
            return body
    raise AssertionError(f"job not done: {body}")


@pytest.mark.usefixtures("stack_cleanup")
def test_deploy_scale_and_down_through_the_api_only(
    cast, api, local_host, celery_worker, docker_client
):
    owner = api(cast.owner)
    response = owner.post(
        "/api/v1/stacks/",
        {
            "name": "apishop",
            "host": "local",
            "team": "alpha",
            "compose": two_services(free_port()),
            "env": {"GREETING": "hello"},
        },
    )
    assert response.status_code == 202, response.content
    assert response["Location"] == response.json()["url"]
    job = wait_done(owner, response.json()["url"])
    assert job["status"] == "succeeded", job
    [listed] = owner.get("/api/v1/stacks/", host=local_host.pk).json()["results"]
    assert listed["name"] == "apishop" and listed["version"] == 1
    assert "scale" in listed["actions"]
    detail = owner.get(f"/api/v1/stacks/{listed['id']}/").json()
    by_name = {s["name"]: s for s in detail["services"]}
    assert set(by_name) == {"web", "worker"}
    assert by_name["worker"]["running"] == 1
    assert detail["env_keys"] == ["GREETING"] and detail["compose"].startswith("\nservices:")

    scaled = owner.post(
        f"/api/v1/stacks/{listed['id']}/scale/", {"service": "worker", "replicas": 2}
    )
    assert scaled.status_code == 202, scaled.content
    assert wait_done(owner, scaled.json()["url"])["status"] == "succeeded"
    stack = Stack.objects.get(pk=listed["id"])
    workers = [s for s, state in project_containers(docker_client, stack).values() if s == "worker"]
    assert len(workers) == 2
    detail = owner.get(f"/api/v1/stacks/{stack.pk}/").json()
    worker = {s["name"]: s for s in detail["services"]}["worker"]
    assert (worker["running"], len(worker["containers"])) == (2, 2)

    down = owner.post(f"/api/v1/stacks/{stack.pk}/down/", {"volumes": True})
    assert down.status_code == 202, down.content
    assert wait_done(owner, down.json()["url"])["status"] == "succeeded"
    assert project_containers(docker_client, stack) == {}


@pytest.fixture
def stack(cast, dashadmin, local_host, no_task_queue):
    """A stack of alpha with one version, as create_stack leaves it (its deploy not run)."""
    made = Stack(
        name="apimatrix",
        host=local_host,
        team=cast.alpha,
        owner=cast.owner,
        project=services.new_project_name("apimatrix"),
        container_nonce="0" * 32,
    )
    made.webhook_secret = "hook-secret"
    made.save()
    made.current_version = services.new_version(
        made, FILE, "SECRET_TOKEN=s3cr3t-value\n", cast.owner
    )
    made.save()
    return made


WRITES = [
    ("deploy", {}),
    ("deploy", {"compose": FILE.replace("60", "61")}),
    ("redeploy", {}),
    ("pull", {}),
    ("scale", {"service": "app", "replicas": 2}),
    ("down", {"volumes": False}),
]


def test_reads_and_writes_follow_the_pages_matrix(cast, stack, api):
    for who, user in cast.users.items():
        client = api(user)
        detail = client.get(f"/api/v1/stacks/{stack.pk}/")
        listed = [s["id"] for s in client.get("/api/v1/stacks/").json()["results"]]
        if who == "outsider":
            assert detail.status_code == 404 and detail.json()["error"]
            assert stack.pk not in listed
        else:
            assert detail.status_code == 200, who
            assert stack.pk in listed
            body = detail.json()
            assert body["env_keys"] == ["SECRET_TOKEN"]
            assert "s3cr3t-value" not in detail.content.decode(), who
            # The compose file: to those the version page shows it (operators).
            assert (body["compose"] is not None) == (who != "viewer"), who
        for action, data in WRITES:
            before = Job.objects.count()
            response = client.post(f"/api/v1/stacks/{stack.pk}/{action}/", data)
            expected = 202 if who in WRITERS else (404 if who == "outsider" else 403)
            assert response.status_code == expected, (who, action, response.content)
            assert "error" in response.json() or expected == 202
            assert Job.objects.count() == before + (expected == 202), (who, action)
        created = client.post(
            "/api/v1/stacks/",
            {"name": f"new-{who}", "host": "local", "team": "alpha", "compose": FILE},
        )
        # Outsiders are operators of beta: they may create, but not in alpha.
        refused = 400 if who == "outsider" else 403
        assert created.status_code == (202 if who in WRITERS else refused), (who, created.content)


def test_tokens_narrowed_by_read_only_and_team(cast, stack, api):
    read_only = api(cast.owner, read_only=True)
    assert read_only.get(f"/api/v1/stacks/{stack.pk}/").status_code == 200
    before = Job.objects.count()
    for action, data in WRITES:
        response = read_only.post(f"/api/v1/stacks/{stack.pk}/{action}/", data)
        assert response.status_code == 403, (action, response.content)
    created = read_only.post(
        "/api/v1/stacks/", {"name": "ro", "host": "local", "team": "alpha", "compose": FILE}
    )
    assert created.status_code == 403
    assert Job.objects.count() == before

    # A dashboard admin's token narrowed to beta: alpha's stack is hidden.
    beta_only = api(cast.dashadmin, team=cast.beta)
    assert beta_only.get("/api/v1/stacks/").json()["results"] == []
    assert beta_only.get(f"/api/v1/stacks/{stack.pk}/").status_code == 404
    assert beta_only.post(f"/api/v1/stacks/{stack.pk}/redeploy/").status_code == 404
    alpha_only = api(cast.dashadmin, team=cast.alpha)
    assert [s["id"] for s in alpha_only.get("/api/v1/stacks/").json()["results"]] == [stack.pk]


def test_policy_refusal_is_a_json_400_naming_service_and_key(cast, local_host, api, no_task_queue):
    bad = f"services:\n  app:\n    image: {settings.TEST_IMAGE}\n    privileged: true\n"
    response = api(cast.owner).post(
        "/api/v1/stacks/", {"name": "evil", "host": "local", "team": "alpha", "compose": bad}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'app'" in error and "'privileged'" in error, error
    assert not Stack.objects.exists() and not Job.objects.exists()


def test_bad_input_is_a_clear_400(cast, stack, api):
    client = api(cast.owner)
    for action, data in [
        ("scale", {"service": "nope", "replicas": 2}),
        ("scale", {"service": "app", "replicas": 99}),
        ("scale", {"service": "app"}),
        ("down", {"volumes": True, "typo": 1}),
        ("deploy", {"env": "A=1"}),
    ]:
        before = Job.objects.count()
        response = client.post(f"/api/v1/stacks/{stack.pk}/{action}/", data)
        assert response.status_code == 400, (action, data, response.content)
        assert response.json()["error"]
        assert Job.objects.count() == before
    assert client.get("/api/v1/stacks/", host="junk").status_code == 200
