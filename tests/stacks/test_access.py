"""The access matrix for every stack page, action and the webhook: owner, each team
role, an outsider (other team) and dashboard admins. Hidden → 404, read-only → 403."""

import pytest
from django.conf import settings
from django.urls import reverse

from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Job, Membership, Role
from stacks import services
from stacks.models import Stack
from stacks.webhooks import signature

FILE = f"services:\n  app:\n    image: {settings.TEST_IMAGE}\n    command: ['sleep', '60']\n"
READERS = {
    "owner": 200,
    "operator": 200,
    "viewer": 200,
    "teamadmin": 200,
    "outsider": 404,
    "admin": 200,
    "dashadmin": 200,
}
WRITERS = {
    "owner": 302,
    "operator": 302,
    "viewer": 403,
    "teamadmin": 302,
    "outsider": 404,
    "admin": 302,
    "dashadmin": 302,
}
WRITER_PAGES = {
    **WRITERS,
    "owner": 200,
    "operator": 200,
    "teamadmin": 200,
    "admin": 200,
    "dashadmin": 200,
}


@pytest.fixture
def stack(cast, dashadmin, local_host, no_task_queue):
    """A stack of alpha with one version, as create_stack leaves it (its deploy not run)."""
    made = Stack(
        name="matrix",
        host=local_host,
        team=cast.alpha,
        owner=cast.owner,
        project=services.new_project_name("matrix"),
        container_nonce="0" * 32,
    )
    made.webhook_secret = "hook-secret"
    made.save()
    services.new_version(made, FILE, "", cast.owner)
    return made


def each_user(cast, check):
    """Run `check(who, client)` for every member of the cast, each with its own login."""
    from django.test import Client

    for who in READERS:
        client = Client()
        client.force_login(cast.users[who])
        check(who, client)


@pytest.mark.parametrize("page", ["detail", "logs", "version"])
def test_read_pages(page, cast, stack):
    args = [stack.pk, 1] if page == "version" else [stack.pk]

    def check(who, client):
        assert client.get(reverse(f"stacks:{page}", args=args)).status_code == READERS[who], who

    each_user(cast, check)


def test_version_file_is_shown_to_operators_only(cast, stack):
    def check(who, client):
        response = client.get(reverse("stacks:version", args=[stack.pk, 1]))
        if response.status_code == 200:
            shown = b"command: [" in response.content
            assert shown == (WRITERS[who] == 302), who

    each_user(cast, check)


@pytest.mark.parametrize("page", ["edit", "webhook_info"])
def test_operator_pages(page, cast, stack):
    def check(who, client):
        response = client.get(reverse(f"stacks:{page}", args=[stack.pk]))
        assert response.status_code == WRITER_PAGES[who], who
        if response.status_code == 200 and page == "webhook_info":
            assert stack.webhook_secret in response.content.decode()

    each_user(cast, check)


ACTIONS = [
    ("stacks:action", ["redeploy"], {}),
    ("stacks:action", ["pull"], {}),
    ("stacks:action", ["start"], {}),
    ("stacks:action", ["stop"], {"service": "app"}),
    ("stacks:action", ["restart"], {}),
    ("stacks:action", ["scale"], {"service": "app", "replicas": "2"}),
    ("stacks:action", ["down"], {"volumes": "on"}),
    ("stacks:rollback", [1], {}),
    ("stacks:edit", [], {"compose": FILE, "env": "", "confirm": "deploy"}),
    ("stacks:webhook_rotate", [], {}),
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: f"{a[0]}{a[1]}")
def test_actions(action, cast, stack):
    name, extra, data = action

    def check(who, client):
        before = Job.objects.count()
        secret = Stack.objects.get(pk=stack.pk).webhook_secret
        response = client.post(reverse(name, args=[stack.pk, *extra]), data)
        assert response.status_code == WRITERS[who], who
        allowed = WRITERS[who] == 302
        if name == "stacks:webhook_rotate":
            assert (Stack.objects.get(pk=stack.pk).webhook_secret != secret) == allowed, who
        else:
            assert Job.objects.count() == before + (1 if allowed else 0), who
            if allowed:
                assert Job.objects.order_by("-pk").first().user == cast.users[who]

    each_user(cast, check)


@pytest.mark.parametrize("who", list(WRITERS))
def test_delete(who, cast, stack, login):
    response = login(cast.users[who]).post(reverse("stacks:delete", args=[stack.pk]))
    assert response.status_code == WRITERS[who]
    assert Stack.objects.present().filter(pk=stack.pk).exists() == (WRITERS[who] != 302)


@pytest.mark.parametrize("who", ["viewer", "outsider"])
def test_create_needs_an_operator(who, cast, local_host, login):
    data = {
        "name": "x",
        "host": local_host.pk,
        "team": cast.alpha.pk,
        "source": "editor",
        "compose": FILE,
    }
    client = login(cast.users[who])
    assert client.post(reverse("stacks:new"), data).status_code in (403, 422)
    assert client.post(
        reverse("stacks:template_deploy", args=["2048"]), {"name": "g"}
    ).status_code in (403, 422)
    assert Stack.objects.filter(name__in=["x", "g"]).count() == 0


def test_outsider_cannot_deploy_into_another_team(cast, local_host, login):
    data = {
        "name": "x",
        "host": local_host.pk,
        "team": cast.alpha.pk,
        "source": "editor",
        "compose": FILE,
    }
    response = login(cast.outsider).post(reverse("stacks:new"), data)
    assert response.status_code == 422  # alpha is not among the outsider's teams
    assert not Stack.objects.filter(name="x").exists()


def test_list_shows_only_the_teams_stacks(cast, stack):
    def check(who, client):
        response = client.get(reverse("stacks:list"))
        assert response.status_code == 200
        assert (b"matrix" in response.content) == (READERS[who] == 200), who

    each_user(cast, check)


def test_job_rechecks_access_when_it_runs(cast, stack, login):
    job = services.request_action(Actor(cast.operator), stack, "restart")
    Membership.objects.filter(user=cast.operator, team=cast.alpha).update(role=Role.VIEWER)
    job = jobs.run(job.pk)
    assert job.status == "failed" and "Permission denied" in job.message
    assert AuditEntry.objects.filter(action="stack.restart", result="denied").exists()


def test_webhook_runs_as_the_owner_and_is_refused_once_they_are_demoted(cast, stack, client):
    Membership.objects.filter(user=cast.owner, team=cast.alpha).update(role=Role.VIEWER)
    body = b"{}"
    response = client.post(
        reverse("stacks:webhook", args=[stack.webhook_uuid]),
        data=body,
        content_type="application/json",
        headers={
            "X-Hub-Signature-256": signature(stack.webhook_secret, body),
            "X-GitHub-Delivery": "a",
        },
    )
    assert response.status_code == 202
    job = jobs.run(response.json()["job"])
    assert job.status == "failed" and "Permission denied" in job.message


def test_webhook_of_unknown_stack_is_404_and_rate_limited(cast, stack, client, settings):
    url = reverse("stacks:webhook", args=[stack.webhook_uuid])
    assert client.post("/hooks/stacks/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get(url).status_code == 405
    settings.STACKS_WEBHOOK_PER_MINUTE = 2
    codes = []
    for n in range(3):
        codes.append(
            client.post(
                url,
                data=b"{}",
                content_type="application/json",
                headers={
                    "Authorization": f"Bearer {stack.webhook_secret}",
                    "X-Delivery-Id": str(n),
                },
            ).status_code
        )
    assert codes == [202, 202, 429]


def test_webhook_refuses_large_bodies(stack, client, settings):
    settings.STACKS_WEBHOOK_MAX_BYTES = 100
    response = client.post(
        reverse("stacks:webhook", args=[stack.webhook_uuid]),
        data=b"x" * 200,
        content_type="application/json",
        headers={"Authorization": f"Bearer {stack.webhook_secret}"},
    )
    assert response.status_code == 413


def test_stack_webhook_command_prints_url_and_secret(stack, capsys):
    from django.core.management import call_command

    call_command("stack_webhook", str(stack.pk))
    out = capsys.readouterr().out
    assert str(stack.webhook_uuid) in out and stack.webhook_secret in out
    assert AuditEntry.objects.filter(action="stack.webhook_show").exists()
