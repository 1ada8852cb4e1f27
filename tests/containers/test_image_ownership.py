"""Containers run only images the team may use: its own, or a shared base image.

Before, an operator of alpha could run a container from beta's private image by
name or id and read its files. The create form refuses early, the worker decides
again at run time (by the id the engine resolves, then by the id the container
got), and a missing image is pulled through the images app's own pull for the
team (its granted registry's credentials) and recorded as the team's. A refusal
never says whose the image is, and leaves nothing on the engine.
"""

import io
import uuid

import docker
import pytest
from django.conf import settings
from django.urls import reverse

from containers.models import Container
from containers.services import request_create
from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Job
from images.models import Image
from images.services.sync import record_image
from tests.images.conftest import PREFIX, registry, remove_run_images  # noqa: F401
from tests.support.helpers import (
    RUN_LABEL,
    TEST_LABEL,
    create_form_data,
    engine_names,
    unique,
)

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("no_task_queue")]

LABELS = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}
REFUSED = "is not one of alpha's images on local"


def _build(client, tag):
    dockerfile = f"FROM {settings.TEST_IMAGE}\nLABEL dockyard.test.unique={uuid.uuid4().hex}\n"
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels={RUN_LABEL: settings.RUN_ID},
        rm=True,  # no intermediate containers left behind
        forcerm=True,
    )
    return image.id


@pytest.fixture(scope="module")
def engine_images(docker_client, registry_server):
    """Real images made for this module: beta's (pushed, so it has a digest), alpha's,
    one nobody owns, and one only in the registry (for the pull)."""
    auth = {"username": registry_server.username, "password": registry_server.password}
    tags = {
        "beta": f"{registry_server.url}/{PREFIX}/theirs-{uuid.uuid4().hex[:6]}:1",
        "alpha": f"{PREFIX}/ours-{uuid.uuid4().hex[:6]}:1",
        "nobody": f"{PREFIX}/nobody-{uuid.uuid4().hex[:6]}:1",
        "remote": f"{registry_server.url}/{PREFIX}/remote-{uuid.uuid4().hex[:6]}:1",
    }
    ids = {what: _build(docker_client, tag) for what, tag in tags.items()}
    for what in ("beta", "remote"):
        repo, _, tag = tags[what].rpartition(":")
        for line in docker_client.api.push(repo, tag, auth_config=auth, stream=True, decode=True):
            assert "error" not in line, line
    digests = docker_client.api.inspect_image(ids["beta"])["RepoDigests"]
    docker_client.api.remove_image(tags["remote"], force=True)  # only in the registry now
    yield {"tags": tags, "ids": ids, "beta_digest": digests[0]}
    remove_run_images(docker_client)


@pytest.fixture
def mirror(cast, local_host, engine_images):
    """The module's images in this test's mirror: beta's, alpha's, and one unowned."""
    with docker.APIClient(base_url="unix:///var/run/docker.sock", version="1.41") as api:
        rows = {
            w: record_image(api, local_host, engine_images["ids"][w])
            for w in ("beta", "alpha", "nobody")
        }
    Image.objects.filter(pk=rows["beta"].pk).update(team=cast.beta, owner=cast.outsider)
    Image.objects.filter(pk=rows["alpha"].pk).update(team=cast.alpha, owner=cast.owner)
    return engine_images


def references(images, what="beta"):
    """The ways to name one image: tag, full id, short id, id without prefix, digest."""
    docker_id = images["ids"][what]
    refs = {
        "tag": images["tags"][what],
        "id": docker_id,
        "short-id": docker_id.removeprefix("sha256:")[:12],
    }
    if what == "beta":
        refs["digest"] = images["beta_digest"]
    return refs


def post_create(client, local_host, team, image, **extra):
    data = create_form_data(local_host, team, unique("img"), image=image, **extra)
    return client.post(reverse("containers:new"), data)


def spec(image, name=None):
    return {
        "image": image,
        "name": name or unique("img"),
        "command": ["sleep", "60"],
        "labels": LABELS,
    }


def refusal_of(response):
    assert response.status_code == 422, response.status_code
    return " ".join(response.context["form"].errors.get("image", []))


# ---------------------------------------------------------------- the form


@pytest.mark.parametrize("how", ["tag", "id", "short-id", "digest"])
def test_form_refuses_another_teams_image_by_any_name(cast, login, local_host, mirror, how):
    ref = references(mirror)[how]
    response = post_create(login(cast.operator), local_host, cast.alpha, ref)
    message = refusal_of(response)
    assert f"Image {ref} {REFUSED}" in message
    assert "pull it for your team on the Images page" in message
    assert "beta" not in message and "outsider" not in message  # whose it is: never said
    assert not Job.objects.exists()


def test_form_gives_the_same_refusal_for_an_unowned_image(cast, login, local_host, mirror):
    """No oracle: an image nobody owns reads exactly like another team's."""
    client = login(cast.operator)
    foreign = refusal_of(post_create(client, local_host, cast.alpha, mirror["tags"]["beta"]))
    unowned = refusal_of(post_create(client, local_host, cast.alpha, mirror["tags"]["nobody"]))
    assert foreign.replace(mirror["tags"]["beta"], "X") == unowned.replace(
        mirror["tags"]["nobody"], "X"
    )
    assert not Job.objects.exists()


@pytest.mark.parametrize("who", ["owner", "operator", "teamadmin", "admin"])
def test_form_accepts_the_teams_own_and_shared_images(cast, login, local_host, mirror, who):
    client = login(getattr(cast, who))
    for image in (mirror["tags"]["alpha"], settings.TEST_IMAGE):
        response = post_create(client, local_host, cast.alpha, image)
        assert response.status_code == 302, response.context["form"].errors
    assert Job.objects.filter(kind="container.create").count() == 2


def test_viewer_and_outsider(cast, login, local_host, mirror):
    # A viewer cannot create at all (403); the outsider cannot pick alpha, and from
    # their own team beta, alpha's image is refused like any other team's.
    assert (
        post_create(login(cast.viewer), local_host, cast.alpha, mirror["tags"]["alpha"]).status_code
        == 403
    )
    outsider = login(cast.outsider)
    response = post_create(outsider, local_host, cast.alpha, mirror["tags"]["beta"])
    assert response.status_code == 422 and "team" in response.context["form"].errors
    message = refusal_of(post_create(outsider, local_host, cast.beta, mirror["tags"]["alpha"]))
    assert "is not one of beta's images on local" in message and "alpha" not in message.replace(
        mirror["tags"]["alpha"], ""
    )
    # Their own image is theirs to run.
    assert post_create(outsider, local_host, cast.beta, mirror["tags"]["beta"]).status_code == 302
    assert Job.objects.filter(kind="container.create").count() == 1


def test_admin_may_run_an_unowned_image(cast, login, local_host, mirror, engine_cleanup):
    response = post_create(login(cast.admin), local_host, cast.alpha, mirror["tags"]["nobody"])
    assert response.status_code == 302
    job = jobs.run(Job.objects.get(kind="container.create").pk)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert Container.objects.get(pk=job.container_id).team == cast.alpha


# ---------------------------------------------------------------- the worker


@pytest.mark.parametrize("how", ["tag", "id", "short-id", "digest"])
def test_worker_refuses_another_teams_image(cast, local_host, mirror, engine_cleanup, how):
    ref = references(mirror)[how]
    wanted = spec(ref)
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, wanted).pk)
    assert job.status == Job.Status.FAILED
    assert f"Image {ref} {REFUSED}" in job.message and "beta" not in job.message
    assert wanted["name"] not in engine_names(engine_cleanup)
    assert AuditEntry.objects.get(job_id=job.pk, action="container.create").result == "failed"


def test_worker_refuses_an_unowned_image_to_an_operator(cast, local_host, mirror, engine_cleanup):
    wanted = spec(mirror["tags"]["nobody"])
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, wanted).pk)
    assert job.status == Job.Status.FAILED and REFUSED in job.message
    assert wanted["name"] not in engine_names(engine_cleanup)


def test_image_given_to_beta_after_the_form_is_refused_at_run_time(
    cast, login, local_host, mirror, engine_cleanup
):
    response = post_create(login(cast.operator), local_host, cast.alpha, mirror["tags"]["alpha"])
    assert response.status_code == 302
    job = Job.objects.get(kind="container.create")
    # A dashboard admin reassigns the image to beta while the job waits.
    Image.objects.filter(host=local_host, docker_id=mirror["ids"]["alpha"]).update(team=cast.beta)
    job = jobs.run(job.pk)
    assert job.status == Job.Status.FAILED and REFUSED in job.message
    assert job.params["name"] not in engine_names(engine_cleanup)


def test_worker_runs_the_teams_own_and_a_shared_image(cast, local_host, mirror, engine_cleanup):
    for image in (mirror["tags"]["alpha"], settings.TEST_IMAGE):
        wanted = spec(image)
        job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, wanted).pk)
        assert job.status == Job.Status.SUCCEEDED, job.message
        made = engine_cleanup.containers.get(wanted["name"])
        assert made.attrs["Image"] in (
            mirror["ids"]["alpha"],
            _id(engine_cleanup, settings.TEST_IMAGE),
        )


def _id(client, name):
    return client.api.inspect_image(name)["Id"]


# ---------------------------------------------------------------- a missing image


@pytest.mark.usefixtures("registry")
def test_missing_image_is_pulled_for_the_team_with_its_registry(
    cast, local_host, mirror, registry_server, engine_cleanup
):
    """Pulled through the images app: alpha's registry credentials, recorded as alpha's
    image (made by the job's user), audited as a pull; the password appears nowhere."""
    ref = mirror["tags"]["remote"]
    wanted = spec(ref)
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, wanted).pk)
    assert job.status == Job.Status.SUCCEEDED, job.message
    pulled = engine_cleanup.images.get(ref)
    row = Image.objects.get(host=local_host, docker_id=pulled.id)
    assert (row.team, row.owner, row.created_by_dashboard) == (cast.alpha, cast.operator, True)
    assert AuditEntry.objects.get(job_id=job.pk, action="image.pull").result == "ok"
    assert engine_cleanup.containers.get(wanted["name"]).attrs["Image"] == pulled.id
    job.refresh_from_db()
    secret = registry_server.password
    assert secret not in repr(job.params) + job.output + job.message
    assert all(
        secret not in repr(e.params) + e.message for e in AuditEntry.objects.filter(job_id=job.pk)
    )
    engine_cleanup.api.remove_container(wanted["name"], force=True)
    engine_cleanup.api.remove_image(ref, force=True)


@pytest.mark.usefixtures("registry")
def test_missing_image_from_a_registry_not_granted_is_refused(
    cast, local_host, mirror, engine_cleanup
):
    """Beta has no grant to alpha's registry: nothing is pulled, nothing is made."""
    ref = mirror["tags"]["remote"]
    wanted = spec(ref)
    job = jobs.run(request_create(Actor(cast.outsider), local_host, cast.beta, wanted).pk)
    assert job.status == Job.Status.FAILED
    assert "is not granted to team beta" in job.message
    with pytest.raises(docker.errors.ImageNotFound):
        engine_cleanup.images.get(ref)
    assert wanted["name"] not in engine_names(engine_cleanup)


def test_missing_image_that_cannot_be_pulled_fails_cleanly(
    cast, local_host, mirror, engine_cleanup
):
    ref = f"127.0.0.1:9/{PREFIX}/nowhere:1"  # nothing listens on port 9
    wanted = spec(ref)
    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, wanted).pk)
    assert job.status == Job.Status.FAILED
    assert f"Pull of {ref} failed" in job.message
    assert AuditEntry.objects.get(job_id=job.pk, action="image.pull").result == "failed"
    assert wanted["name"] not in engine_names(engine_cleanup)
