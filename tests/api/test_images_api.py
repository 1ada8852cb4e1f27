"""Images through the API: the images pages' access matrix replayed (404 hidden, 403
refused, 202 + job when allowed), token limits, bad input as a JSON 400, and one real
build → tag → export → remove on the engine."""

import pytest
from django.conf import settings

from dashboard.models import AuditEntry, Job
from images.models import Image
from tests.images.conftest import (  # noqa: F401  (fixtures)
    alpha_image,
    built_image,
    image_cleanup,
    image_name,
    shared_base,
)
from tests.support.helpers import RUN_LABEL, TEST_LABEL, wait_job

pytestmark = [pytest.mark.live]

ROLES = ["owner", "operator", "viewer", "teamadmin", "outsider", "admin", "dashadmin"]
OPERATOR = {"owner": 202, "operator": 202, "viewer": 403, "teamadmin": 202, "outsider": 404,
            "admin": 202, "dashadmin": 202}  # fmt: skip
ADMIN = {**{r: 403 for r in ROLES}, "outsider": 404, "admin": 202, "dashadmin": 202}


@pytest.fixture
def matrix(cast, dashadmin, local_host, alpha_image, no_task_queue):  # noqa: F811
    return cast, alpha_image


def _queued(kind):
    return Job.objects.filter(kind=kind).count()


def test_image_reads_follow_the_matrix(matrix, api):
    cast, image = matrix
    name = image.tags[0]
    for role in ROLES:
        client = api(cast.users[role])
        detail = client.get(f"/api/v1/images/{image.pk}/")
        listed = [i["id"] for i in client.get("/api/v1/images/", q=name).json()["results"]]
        if role == "outsider":
            assert detail.status_code == 404 and image.pk not in listed
            continue
        assert detail.status_code == 200, role
        assert detail.json()["tags"] == image.tags and listed == [image.pk], role
    # The page's filters: a tagged image is not dangling; another host lists nothing.
    client = api(cast.owner)
    assert client.get("/api/v1/images/", q=name, dangling="1").json()["results"] == []
    assert client.get("/api/v1/images/", q=name, dangling="0").json()["count"] == 1
    assert client.get("/api/v1/images/", q=name, host=image.host_id + 999).json()["count"] == 0
    # A token restricted to beta does not show alpha's image, even to a dashboard admin.
    beta_only = api(cast.admin, team=cast.beta)
    assert beta_only.get(f"/api/v1/images/{image.pk}/").status_code == 404
    assert beta_only.get("/api/v1/images/", q=name).json()["count"] == 0


@pytest.mark.parametrize(
    "action,body",
    [("tag", {"target": "dyimg-api/other:2"}), ("push", "tag"), ("remove", None)],
)
def test_image_writes_follow_the_matrix(matrix, api, action, body):
    cast, image = matrix
    if body == "tag":
        body = {"tag": image.tags[0]}
    url = f"/api/v1/images/{image.pk}/" + ("" if action == "remove" else f"{action}/")
    statuses = {}
    for role in ROLES:
        client = api(cast.users[role])
        response = client.delete(url) if action == "remove" else client.post(url, body)
        statuses[role] = response.status_code
        if response.status_code == 202:
            assert response.json()["url"] == f"/api/v1/jobs/{response.json()['job']}/"
        else:
            assert response.json()["error"].endswith("."), role
    assert statuses == OPERATOR
    assert _queued(f"image.{action}") == list(statuses.values()).count(202)
    # A read-only token is refused every write, in the gate's words; nothing is queued.
    before = Job.objects.count()
    read_only = api(cast.owner, read_only=True)
    response = read_only.delete(url) if action == "remove" else read_only.post(url, body)
    assert response.status_code == 403
    assert response.json()["error"].startswith("This API token is read-only")
    assert Job.objects.count() == before


def test_force_remove_and_prune_are_for_dashboard_admins(matrix, api, local_host):
    cast, image = matrix
    force = {r: api(cast.users[r]).delete(f"/api/v1/images/{image.pk}/?force=true") for r in ROLES}
    assert {r: resp.status_code for r, resp in force.items()} == ADMIN
    prune = {
        r: api(cast.users[r]).post("/api/v1/images/prune/", {"host": local_host.pk}).status_code
        for r in ROLES
    }
    assert prune == {r: 202 if r in ("admin", "dashadmin") else 403 for r in ROLES}
    assert _queued("image.prune") == 2
    # A dashboard admin's team token holds no admin power.
    team_token = api(cast.admin, team=cast.alpha)
    assert team_token.post("/api/v1/images/prune/", {"host": local_host.pk}).status_code == 403


def test_pull_and_build_need_an_operator_role_and_validate_like_the_page(
    matrix,
    api,
    local_host,
    shared_base,  # noqa: F811
):
    cast, _image = matrix
    pull = {"host": local_host.pk, "team": "alpha", "reference": "dyimg-api/none:1"}
    build = {
        "host": local_host.pk,
        "team": "alpha",
        "tag": "dyimg-api/built:1",
        "dockerfile_text": f"FROM {settings.TEST_IMAGE}\n",
    }
    for role in ROLES:
        if role == "outsider":
            continue
        client = api(cast.users[role])
        expected = 403 if role == "viewer" else 202
        assert client.post("/api/v1/images/pull/", pull).status_code == expected, role
        assert client.post("/api/v1/images/build/", build).status_code == expected, role
    # The outsider's team (beta) is not a choice for alpha's members, and vice versa.
    assert api(cast.outsider).post("/api/v1/images/pull/", pull).status_code == 400
    before = Job.objects.count()
    client = api(cast.operator)
    for url, body in [
        ("/api/v1/images/pull/", {"host": local_host.pk, "team": "alpha"}),
        ("/api/v1/images/pull/", {**pull, "reference": "UPPER/Case::bad"}),
        ("/api/v1/images/build/", {**build, "dockerfile_text": ""}),
        ("/api/v1/images/build/", {**build, "secret": "x"}),
        (f"/api/v1/images/{_image.pk}/tag/", {"target": "no spaces allowed"}),
        ("/api/v1/images/prune/", {"host": "junk"}),
    ]:
        response = client.post(url, body)
        assert response.status_code in (400, 403), (url, body, response.content)
        error = response.json()["error"]
        assert error.endswith(".") and "\n" not in error, error
    assert Job.objects.count() == before


def test_build_tag_export_and_remove_for_real(
    cast,
    local_host,
    api,
    celery_worker,
    image_cleanup,  # noqa: F811
    shared_base,  # noqa: F811
):
    client = api(cast.operator)
    tag = f"{image_name('api')}:1"
    response = client.post(
        "/api/v1/images/build/",
        {
            "host": local_host.pk,
            "team": "alpha",
            "tag": tag,
            "dockerfile_text": f"FROM {settings.TEST_IMAGE}\nARG WORD\nRUN echo $WORD > /word\n",
            "build_args": {"WORD": "hello-from-api"},
        },
    )
    assert response.status_code == 202, response.content
    job = wait_job(response.json()["job"], timeout=90)
    assert job.status == Job.Status.SUCCEEDED, (job.message, job.output)
    done = client.get(response.json()["url"]).json()
    assert done["status"] == "succeeded"
    image = next(i for i in Image.objects.present().filter(host=local_host) if tag in i.tags)
    assert (image.team, image.owner) == (cast.alpha, cast.operator)
    detail = client.get(f"/api/v1/images/{image.pk}/").json()
    assert {"tag", "push", "remove", "export"} <= set(detail["actions"])

    second = f"{image_name('api')}:2"
    job = wait_job(client.post(f"/api/v1/images/{image.pk}/tag/", {"target": second}).json()["job"])
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert image_cleanup.images.get(second).id == image.docker_id

    export = client.post(f"/api/v1/images/{image.pk}/export/")
    assert export.status_code == 200 and export["Content-Type"] == "application/x-tar"
    assert len(next(iter(export.streaming_content))) > 0
    entry = AuditEntry.objects.filter(action="image.export", user=cast.operator).latest("pk")
    assert entry.api_token_name == "t"

    job = wait_job(client.delete(f"/api/v1/images/{image.pk}/").json()["job"], timeout=60)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert not any(tag in t or second in t for i in image_cleanup.images.list() for t in i.tags)


def test_build_from_an_uploaded_context(
    cast,
    local_host,
    make_token,
    celery_worker,
    image_cleanup,  # noqa: F811
    shared_base,  # noqa: F811
):
    import io
    import tarfile

    from django.test import Client

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, text in [
            ("Dockerfile", f"FROM {settings.TEST_IMAGE}\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", "hello from a multipart upload\n"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    archive.seek(0)
    archive.name = "context.tar"
    tag = f"{image_name('ctx')}:1"
    headers = {"Authorization": f"Bearer {make_token(cast.operator)}"}
    response = Client().post(
        "/api/v1/images/build/",
        {"host": local_host.pk, "team": "alpha", "tag": tag, "context": archive},
        headers=headers,
    )
    assert response.status_code == 202, response.content
    job = wait_job(response.json()["job"], timeout=90)
    assert job.status == Job.Status.SUCCEEDED, (job.message, job.output)
    made = image_cleanup.images.get(tag)
    labels = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}
    out = image_cleanup.containers.run(made.id, ["cat", "/hello.txt"], remove=True, labels=labels)
    assert out == b"hello from a multipart upload\n"
