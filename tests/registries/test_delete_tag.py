"""Deleting a tag: a Job run by the real worker against the real registry, audited,
refused when the tag moved since the user looked, when the role was revoked meanwhile,
and reported as such by a registry that does not allow deletes."""

import pytest
from django.urls import reverse

from dashboard.audit import Actor
from dashboard.models import AuditEntry, Membership, Role
from registries import services
from registries.client import RegistryClient
from tests.registries.conftest import namespace, push
from tests.support.helpers import wait_job
from tests.support.registry import TestRegistry

pytestmark = [pytest.mark.live]


def tags_of(registry, repository):
    with RegistryClient(registry) as client:
        return client.tags(repository).items


def post_delete(client, registry, repository, tag, digest):
    return client.post(
        reverse("registries:delete_tag", args=[registry.pk]),
        {"repository": repository, "tag": tag, "digest": digest},
    )


def test_team_admin_deletes_a_tag_and_the_team_sees_the_audit_entry(
    cast, login, registry, docker_client, registry_server, celery_worker
):
    repo = f"{namespace()}/del"
    digest = push(docker_client, registry_server, repo, "gone", unique=True)
    keep = push(docker_client, registry_server, repo, "kept", unique=True)

    response = post_delete(login(cast.teamadmin), registry, repo, "gone", digest)
    job = wait_job(response["Location"].rstrip("/").rsplit("/", 1)[1])

    assert job.status == "succeeded", job.message
    assert job.message == f"Deleted {repo}:gone ({digest[:19]}…) from test-registry."
    assert tags_of(registry, repo) == ["kept"]
    assert f"{repo}:gone points at {digest}" in job.output and "Deleted\n" in job.output
    entry = AuditEntry.objects.get(action="registry.delete_tag")
    assert (entry.result, entry.team, entry.user) == ("ok", cast.alpha, cast.teamadmin)
    assert entry.params["digest"] == digest and entry.job_id == job.pk
    audit = login(cast.viewer).get(reverse("audit")).content.decode()
    assert f"test-registry/{repo}:gone" in audit  # the team sees what its admin did
    page = login(cast.viewer).get(reverse("registries:tags", args=[registry.pk, repo]))
    assert "kept" in page.content.decode() and keep[:19] in page.content.decode()


def test_a_tag_that_moved_since_the_page_was_read_is_not_deleted(
    cast, login, registry, docker_client, registry_server, celery_worker
):
    repo = f"{namespace()}/moving"
    seen = push(docker_client, registry_server, repo, "latest", unique=True)
    now = push(docker_client, registry_server, repo, "latest", unique=True)
    assert seen != now

    response = post_delete(login(cast.admin), registry, repo, "latest", seen)
    job = wait_job(response["Location"].rstrip("/").rsplit("/", 1)[1])

    assert job.status == "failed"
    assert "now points at" in job.message and "nothing was deleted" in job.message
    assert tags_of(registry, repo) == ["latest"]
    entry = AuditEntry.objects.get(action="registry.delete_tag")
    assert entry.result == "failed" and entry.team is None  # a dashboard admin's: no team


def test_a_role_revoked_before_the_worker_runs_stops_the_delete(
    cast, login, registry, docker_client, registry_server, no_task_queue
):
    from dashboard import jobs

    repo = f"{namespace()}/revoked"
    digest = push(docker_client, registry_server, repo, "v1", unique=True)
    response = post_delete(login(cast.teamadmin), registry, repo, "v1", digest)
    assert response.status_code == 302
    Membership.objects.filter(user=cast.teamadmin).update(role=Role.VIEWER)

    job = jobs.run(response["Location"].rstrip("/").rsplit("/", 1)[1])

    assert job.status == "failed" and job.message.startswith("Permission denied")
    assert tags_of(registry, repo) == ["v1"]


def test_registry_without_deletes_fails_the_job_saying_so(
    cast, login, docker_client, no_task_queue
):
    from dashboard import jobs

    with TestRegistry(delete_enabled=False) as server:
        reg = services.save_registry(
            Actor.system(),
            name="no-deletes",
            url=server.url,
            username=server.username,
            password=server.password,
            teams=[cast.alpha],
        )
        digest = push(docker_client, server, "keep/app", "v1", unique=True)
        response = post_delete(login(cast.teamadmin), reg, "keep/app", "v1", digest)
        job = jobs.run(response["Location"].rstrip("/").rsplit("/", 1)[1])
        assert tags_of(reg, "keep/app") == ["v1"]
    assert job.status == "failed"
    assert "does not allow this" in job.message and "deletes are turned off" in job.message
    assert AuditEntry.objects.get(action="registry.delete_tag").result == "failed"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"repository": "a", "tag": "v1"},
        {"repository": "<b>x</b>", "tag": "v1", "digest": "sha256:" + "a" * 64},
        {"repository": "a", "tag": "-bad", "digest": "sha256:" + "a" * 64},
        {"repository": "a", "tag": "v1", "digest": "sha256:xyz"},
        {"repository": "a/../../x", "tag": "v1", "digest": "sha256:" + "a" * 64},
    ],
)
def test_bad_delete_input_is_a_400_and_queues_nothing(cast, login, registry, data):
    from dashboard.models import Job

    response = login(cast.admin).post(reverse("registries:delete_tag", args=[registry.pk]), data)
    assert response.status_code == 400
    assert not Job.objects.exists()
