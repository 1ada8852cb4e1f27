"""The pages' access matrix replayed through the API on a real container: the same
answers (404 hidden, 403 refused, 403 for a read-only token on every write), nothing
changed on the engine or queued when refused; no secret the page would not show."""

import pytest

from dashboard.models import AuditEntry, Job
from resources.models import Network, Volume
from tests.api.conftest import streamed
from tests.support.helpers import unique

pytestmark = [pytest.mark.live]

MEMBERS = ["owner", "operator", "viewer", "teamadmin", "dashadmin", "admin"]
WRITERS = ["owner", "operator", "teamadmin", "dashadmin", "admin"]
SECRETS = {"DB_PASSWORD": "hunter2", "DATABASE_URL": "postgres://app:s3cret@db/x"}
PLAIN = "visible-value-42"


@pytest.fixture(autouse=True)
def _dashadmin(dashadmin):
    """Every test here has the flagged dashboard admin in the cast."""


def snapshot(docker, docker_id):
    state = docker.api.inspect_container(docker_id)["State"]
    return state["Status"], state["StartedAt"], state["Pid"]


@pytest.fixture
def target(cast, make_container):
    return make_container(
        owner=cast.owner,
        team=cast.alpha,
        environment={**SECRETS, "PLAIN": PLAIN},
        command=["sh", "-c", "echo line-one; echo line-two >&2; exec sleep 300"],
    )


def test_reads_follow_the_matrix_and_show_what_the_page_shows(cast, target, api, login):
    for who in [*MEMBERS, "outsider"]:
        user = cast.users[who]
        client = api(user)
        detail = client.get(f"/api/v1/containers/{target.pk}/")
        logs = client.get(f"/api/v1/containers/{target.pk}/logs/")
        listed = client.get("/api/v1/containers/", q=target.name).json()["results"]
        if who == "outsider":
            assert (detail.status_code, logs.status_code) == (404, 404)
            assert target.name not in str(listed)
            continue
        assert (detail.status_code, logs.status_code) == (200, 200), who
        assert target.name in [c["name"] for c in listed]
        body = detail.content.decode()
        for secret in ("hunter2", "s3cret"):
            assert secret not in body, (who, secret)
        env = {e["key"]: e["value"] for e in detail.json()["inspect"]["env"]}
        assert set(SECRETS) <= set(env)
        page = login(user).get(f"/containers/{target.pk}/").content.decode()
        # Environment values: exactly when the page shows them (operators, not viewers).
        assert (PLAIN in body) == (PLAIN in page) == (who != "viewer"), who
        text = streamed(logs)
        assert "stdout line-one" in text and "stderr line-two" in text


def test_every_refused_action_changes_nothing(cast, target, api, engine_cleanup):
    before = snapshot(engine_cleanup, target.pk and target.docker_id)
    read_only_owner = api(cast.owner, read_only=True)
    for action in ("start", "stop", "restart", "kill", "pause", "unpause", "remove"):
        for client, status in [
            (api(cast.outsider), 404),
            (api(cast.viewer), 403),
            (read_only_owner, 403),
            (api(cast.admin, read_only=True), 403),
            (api(cast.outsider, team=cast.beta), 404),
        ]:
            response = client.post(f"/api/v1/containers/{target.pk}/{action}/", {"force": True})
            assert response.status_code == status, (action, status)
            assert "error" in response.json()
    assert snapshot(engine_cleanup, target.docker_id) == before
    assert not Job.objects.exists()


def test_every_allowed_writer_gets_a_job_through_its_token(cast, target, api, no_task_queue):
    for who in WRITERS:
        response = api(cast.users[who], name=f"{who}-ci").post(
            f"/api/v1/containers/{target.pk}/restart/"
        )
        assert response.status_code == 202, who
        job = Job.objects.get(pk=response.json()["job"])
        assert (job.user, job.api_token.name, job.container) == (
            cast.users[who],
            f"{who}-ci",
            target,
        )


def test_create_follows_the_matrix(cast, local_host, api, no_task_queue, engine_cleanup):
    body = {"host": "local", "team": "alpha", "image": "dockyard-test/busybox:latest"}
    assert api(cast.viewer).post("/api/v1/containers/", body).status_code == 403
    assert api(cast.owner, read_only=True).post("/api/v1/containers/", body).status_code == 403
    # The outsider's form offers no team alpha: a 400 naming the field, as the page's 422.
    refused = api(cast.outsider).post("/api/v1/containers/", body)
    assert refused.status_code == 400 and "team" in refused.json()["fields"]
    assert not Job.objects.exists()
    for who in WRITERS:
        response = api(cast.users[who]).post("/api/v1/containers/", {**body, "name": unique()})
        assert response.status_code == 202, (who, response.content)
    # Values travel encrypted, never in the job's parameters.
    api(cast.operator).post("/api/v1/containers/", {**body, "env": SECRETS})
    assert "hunter2" not in str(Job.objects.values_list("params", flat=True))


@pytest.mark.parametrize("kind,model", [("volume", Volume), ("network", Network)])
def test_volumes_and_networks_follow_the_matrix(cast, local_host, api, no_task_queue, kind, model):
    extra = {"docker_id": "e" * 64} if kind == "network" else {}
    row = model.objects.create(host=local_host, name=unique(kind), team=cast.alpha, **extra)
    path = f"/api/v1/{kind}s/{row.pk}/"
    for who in [*MEMBERS, "outsider"]:
        status = api(cast.users[who]).get(path).status_code
        assert status == (404 if who == "outsider" else 200), who
    assert api(cast.outsider).delete(path).status_code == 404
    assert api(cast.viewer).delete(path).status_code == 403
    assert api(cast.operator, read_only=True).delete(path).status_code == 403
    assert not Job.objects.exists()
    assert api(cast.operator).delete(path).status_code == 202
    body = {"host": local_host.pk, "team": cast.alpha.pk, "name": unique(kind)}
    assert api(cast.viewer).post(f"/api/v1/{kind}s/", body).status_code == 403
    assert api(cast.outsider).post(f"/api/v1/{kind}s/", body).status_code == 400
    assert api(cast.operator).post(f"/api/v1/{kind}s/", body).status_code == 202
    assert Job.objects.count() == 2


def test_audit_and_jobs_follow_the_matrix(cast, target, api, no_task_queue):
    job_id = api(cast.owner).post(f"/api/v1/containers/{target.pk}/stop/").json()["job"]
    AuditEntry.objects.create(action="container.stop", target_name=target.name, team=cast.alpha)
    for who in [*MEMBERS, "outsider"]:
        client = api(cast.users[who])
        names = [e["target_name"] for e in client.get("/api/v1/audit/").json()["results"]]
        assert (target.name in names) == (who != "outsider"), who
        sees_job = client.get(f"/api/v1/jobs/{job_id}/").status_code
        assert sees_job == (200 if who in ("owner", "dashadmin", "admin") else 404), who
