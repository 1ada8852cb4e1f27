"""Deploy on push: a git stack from a bare repository on disk, a commit that changes the
compose file, a signed webhook call, and the new version running. A wrong signature, no
signature and a replayed delivery change nothing; git credentials are never shown."""

import json

import pytest
from django.conf import settings
from django.urls import reverse

from dashboard.models import AuditEntry, Job
from stacks.models import Stack, StackVersion
from stacks.webhooks import signature

from .conftest import deployed, project_containers

pytestmark = [pytest.mark.live]

FILE = """services:
  app:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo {word}; while true; do sleep 1; done"]
"""


def running_word(docker_client, stack):
    ids = [i for i, (s, st) in project_containers(docker_client, stack).items() if st == "running"]
    assert len(ids) == 1
    return docker_client.api.inspect_container(ids[0])["Config"]["Cmd"][-1]


def post_hook(client, stack, body, **headers):
    return client.post(
        reverse("stacks:webhook", args=[stack.webhook_uuid]),
        data=body,
        content_type="application/json",
        headers=headers,
    )


def test_signed_push_deploys_the_new_commit(
    cast, login, local_host, repo, celery_worker, stack_cleanup, docker_client, client
):
    first = repo.commit({"compose.yaml": FILE.format(image=settings.TEST_IMAGE, word="one")})
    owner = login(cast.owner)
    response = owner.post(
        reverse("stacks:new"),
        {
            "name": "gitapp",
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "source": "git",
            "git_url": repo.url,
            "git_branch": "main",
            "git_path": "compose.yaml",
            "git_username": "deploy",
            "git_password": "s3cret-token-XYZ",
            "poll_minutes": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    stack = Stack.objects.get(name="gitapp")
    deployed(Job.objects.get(params__stack_id=stack.pk))
    stack.refresh_from_db()
    assert stack.git_commit == first
    assert "echo one" in running_word(docker_client, stack)

    second = repo.commit({"compose.yaml": FILE.format(image=settings.TEST_IMAGE, word="two")})
    body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
    client.logout()
    jobs_before = Job.objects.count()

    # Wrong signature, no signature, a wrong bearer token: 403, nothing queued.
    assert (
        post_hook(client, stack, body, X_Hub_Signature_256="sha256=" + "0" * 64).status_code == 403
    )
    assert post_hook(client, stack, body).status_code == 403
    assert post_hook(client, stack, body, Authorization="Bearer wrong").status_code == 403
    assert Job.objects.count() == jobs_before
    assert AuditEntry.objects.filter(action="stack.webhook", result="denied").count() == 3

    signed = {
        "X_Hub_Signature_256": signature(stack.webhook_secret, body),
        "X_GitHub_Delivery": "d-1",
    }
    response = post_hook(client, stack, body, **signed)
    assert response.status_code == 202
    deployed(response.json()["job"])
    stack.refresh_from_db()
    assert stack.git_commit == second
    assert "echo two" in running_word(docker_client, stack)
    assert StackVersion.objects.get(stack=stack, commit=second).deployed_at is not None
    entry = AuditEntry.objects.get(action="stack.webhook", result="ok")
    assert entry.params["delivery"] == "d-1" and second[:12] in entry.message

    # A replay of the same delivery is ignored.
    response = post_hook(client, stack, body, **signed)
    assert response.status_code == 200 and "duplicate" in response.json()["status"]
    assert Job.objects.filter(params__action="webhook").count() == 1

    # The git password is stored encrypted and never shown back or recorded.
    secret = "s3cret-token-XYZ"
    assert Stack.objects.get(pk=stack.pk).git_password == secret
    assert (
        secret
        not in Stack.objects.filter(pk=stack.pk).values_list("git_password_encrypted", flat=True)[0]
    )
    assert not any(secret in json.dumps(j.params) + j.output + j.message for j in Job.objects.all())
    assert not any(secret in json.dumps(a.params) + a.message for a in AuditEntry.objects.all())
    page = owner.get(reverse("stacks:detail", args=[stack.pk])).content.decode()
    assert secret not in page


def test_symlink_out_of_the_repository_is_refused_and_deliveries_queue(
    cast, local_host, repo, celery_worker, stack_cleanup, docker_client, client
):
    from dashboard.audit import Actor
    from stacks import services

    repo.commit({"compose.yaml": FILE.format(image=settings.TEST_IMAGE, word="one")})
    stack, job = services.create_stack(
        Actor(cast.owner),
        host=local_host,
        team=cast.alpha,
        name="g2",
        source="git",
        git_url=repo.url,
        git_branch="main",
        git_path="compose.yaml",
    )
    deployed(job)
    evil = FILE.format(image=settings.TEST_IMAGE, word="evil") + "    env_file: ./secrets.env\n"
    repo.commit({"secrets.env": ("symlink", "/etc/shadow"), "compose.yaml": evil})
    response = post_hook(client, stack, b"", Authorization=f"Bearer {stack.webhook_secret}")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"])
    from tests.support.helpers import wait_job

    job = wait_job(job, timeout=60)
    assert job.status == "failed"
    assert (
        "Service 'app', key 'env_file': './secrets.env' points outside the stack's own directory."
        in job.message
    )
    assert "echo one" in running_word(docker_client, stack)  # the old version still runs

    # Concurrent deliveries for one stack queue: one runs after the other has finished.
    repo.commit({"compose.yaml": FILE.format(image=settings.TEST_IMAGE, word="one")})
    ids = []
    for n in range(2):
        body = json.dumps({"n": n}).encode()
        headers = {
            "X_Hub_Signature_256": signature(stack.webhook_secret, body),
            "X_GitHub_Delivery": f"c-{n}",
        }
        ids.append(post_hook(client, stack, body, **headers).json()["job"])
    done = [wait_job(i, timeout=90) for i in ids]
    assert all(j.status == "succeeded" for j in done), [j.message for j in done]
    first, second = sorted(done, key=lambda j: j.finished_at)
    assert "Waiting for job" in second.output or second.started_at >= first.finished_at
    assert AuditEntry.objects.filter(action="stack.webhook", result="ok").count() == 2


def test_polling_deploys_when_the_branch_moved(cast, local_host, repo, no_task_queue):
    from datetime import timedelta

    from django.utils import timezone

    from stacks import polling

    head = repo.commit({"compose.yaml": FILE.format(image=settings.TEST_IMAGE, word="one")})
    stack = Stack.objects.create(
        name="polled",
        host=local_host,
        team=cast.alpha,
        owner=cast.owner,
        project="dy-polled-000001",
        container_nonce="1" * 32,
        source="git",
        git_url=repo.url,
        git_branch="main",
        poll_minutes=5,
        webhook_secret_encrypted="",
    )
    queued = polling.poll_due()
    assert len(queued) == 1
    job = Job.objects.get(pk=queued[0])
    assert job.params["action"] == "poll" and job.params["pushed_commit"] == head
    assert polling.poll_due() == []  # not due again for 5 minutes
    Stack.objects.filter(pk=stack.pk).update(
        git_commit=head, last_polled=timezone.now() - timedelta(minutes=6)
    )
    assert polling.poll_due() == []  # due, but the branch has not moved
