"""The access matrix on every container entry point, against the real engine.

For each entry point and each member of the cast: outsider → 404, teammate viewer →
403 on writes, owner / teammate operator / team admin / dashboard admin (by flag or
superuser) → allowed; assigning a container to a team is for dashboard admins only
(a team admin gets 403). A refused
request leaves the engine and the job table as they were; an allowed one runs in the
real worker and changes the engine.
"""

import subprocess
import uuid

import docker
import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from containers.models import Container
from containers.services import ACTIONS, sync_host
from dashboard import access
from dashboard.models import AuditEntry, Host, Job, Membership, Role
from tests.support.helpers import (
    RUN_LABEL,
    TEST_LABEL,
    create_form_data,
    engine_names,
    engine_state,
    unique,
    wait_job,
)

pytestmark = [pytest.mark.live]

# Exits at once on SIGTERM: `wait` is interrupted by the trap, a foreground sleep is not.
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"]
ALLOWED = ["owner", "operator", "teamadmin", "dashadmin", "admin"]
REFUSED_WRITE = [("outsider", 404), ("viewer", 403)]
READ_MATRIX = [
    (r, 200) for r in ("owner", "operator", "viewer", "teamadmin", "dashadmin", "admin")
] + [("outsider", 404)]

# State an action needs to have an effect, and the state it leaves on the engine.
BEFORE = {"start": "exited", "unpause": "paused"}
AFTER = {
    "start": "running",
    "stop": "exited",
    "restart": "running",
    "kill": "exited",
    "pause": "paused",
    "unpause": "running",
    "remove": "absent",
}


def snapshot(client, docker_id):
    """(state, StartedAt): restart changes only the second."""
    try:
        state = client.api.inspect_container(docker_id)["State"]
    except docker.errors.NotFound:
        return ("absent", None)
    return (state["Status"], state["StartedAt"])


@pytest.fixture(autouse=True)
def _dashadmin(dashadmin):
    """Every test here has the flagged dashboard admin in the cast."""


@pytest.fixture
def alpha_container(make_container, cast, engine_cleanup):
    """A container of team alpha, made by `owner`, put in the state `action` acts on."""

    def make(action=None):
        row = make_container(owner=cast.owner, team=cast.alpha, command=LOOP)
        before = BEFORE.get(action)
        if before == "exited":
            engine_cleanup.api.stop(row.docker_id, timeout=10)
        elif before == "paused":
            engine_cleanup.api.pause(row.docker_id)
        if before:
            assert engine_state(engine_cleanup, row.docker_id) == before
        return row

    return make


def action_data(action):
    return {"force": "on"} if action == "remove" else {}


def listed(response):
    return {c.docker_id for c, _ in response.context["rows"]}


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("role, status", READ_MATRIX)
def test_detail_and_list_show_a_team_container_to_team_and_admins_only(
    cast, login, alpha_container, role, status
):
    row = alpha_container()
    client = login(cast.users[role])

    response = client.get(reverse("containers:detail", args=[row.pk]))
    assert response.status_code == status
    page = client.get(reverse("containers:list"))
    assert page.status_code == 200
    if status == 200:
        assert row.name in response.content.decode()
        assert row.docker_id in listed(page)
        assert response.context["actions"] == access.allowed_actions(cast.users[role], row)
    else:
        assert row.name not in response.content.decode()
        assert row.docker_id not in listed(page)
        assert row.name not in page.content.decode()


def test_viewer_pages_offer_no_write_actions(cast, login, alpha_container):
    row = alpha_container()
    client = login(cast.viewer)
    detail = client.get(reverse("containers:detail", args=[row.pk]))
    assert detail.context["actions"] == {"view", "logs", "stats"}
    page = client.get(reverse("containers:list"))
    assert dict(page.context["rows"])[row] == {"view", "logs", "stats"}


# ---------------------------------------------------------------- one container, one action


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role, status", REFUSED_WRITE)
def test_refused_action_leaves_engine_untouched_and_queues_nothing(
    cast, login, alpha_container, engine_cleanup, celery_worker, role, status, action
):
    row = alpha_container(action)
    before = snapshot(engine_cleanup, row.docker_id)

    response = login(cast.users[role]).post(
        reverse("containers:action", args=[row.pk, action]), action_data(action)
    )

    assert response.status_code == status
    assert not Job.objects.exists()
    assert not AuditEntry.objects.filter(action=f"container.{action}").exists()
    assert snapshot(engine_cleanup, row.docker_id) == before
    row.refresh_from_db()
    assert row.removed_at is None


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ALLOWED)
def test_allowed_action_runs_in_worker_and_changes_engine(
    cast, login, alpha_container, engine_cleanup, celery_worker, role, action
):
    user = cast.users[role]
    row = alpha_container(action)
    before = snapshot(engine_cleanup, row.docker_id)

    response = login(user).post(
        reverse("containers:action", args=[row.pk, action]), action_data(action)
    )

    assert response.status_code == 302
    job = wait_job(Job.objects.get(container=row, kind="container.action"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert job.user == user
    after = snapshot(engine_cleanup, row.docker_id)
    assert after[0] == AFTER[action]
    if action == "restart":
        assert after[1] != before[1]  # a new start, not the old run
    entry = AuditEntry.objects.get(action=f"container.{action}", target_id=row.docker_id)
    assert (entry.username, entry.result, entry.team) == (role, "ok", cast.alpha)
    row.refresh_from_db()
    assert (row.removed_at is not None) == (action == "remove")


def test_action_urls_refuse_get(cast, login, alpha_container, engine_cleanup):
    row = alpha_container()
    client = login(cast.owner)
    for action in ACTIONS:
        response = client.get(reverse("containers:action", args=[row.pk, action]))
        assert response.status_code == 405, action
    assert not Job.objects.exists()
    assert engine_state(engine_cleanup, row.docker_id) == "running"


# ---------------------------------------------------------------- bulk


@pytest.mark.parametrize("role, status", [*REFUSED_WRITE, *((r, 200) for r in ALLOWED)])
def test_bulk_pause_by_role(
    cast, login, alpha_container, engine_cleanup, celery_worker, role, status
):
    rows = [alpha_container(), alpha_container()]

    response = login(cast.users[role]).post(
        reverse("containers:bulk"), {"action": "pause", "ids": [r.pk for r in rows]}
    )

    if role == "outsider":
        # Ids the user cannot see are not valid choices: the form fails, nothing is done.
        assert response.status_code == 422
        assert "ids" in response.context["form"].errors
    else:
        assert response.status_code == status
    if status != 200:
        assert not Job.objects.exists()
        assert {engine_state(engine_cleanup, r.docker_id) for r in rows} == {"running"}
        if role == "viewer":
            assert set(response.context["refused"]) == set(rows)
        return
    jobs = [wait_job(j) for j in Job.objects.filter(kind="container.action")]
    assert len(jobs) == 2
    assert {(j.status, j.user) for j in jobs} == {(Job.Status.SUCCEEDED, cast.users[role])}
    assert {engine_state(engine_cleanup, r.docker_id) for r in rows} == {"paused"}


def test_bulk_with_one_hidden_id_does_nothing_at_all(
    cast, login, alpha_container, make_container, engine_cleanup, celery_worker
):
    mine = alpha_container()
    theirs = make_container(owner=cast.outsider, team=cast.beta, command=LOOP)

    response = login(cast.operator).post(
        reverse("containers:bulk"), {"action": "kill", "ids": [mine.pk, theirs.pk]}
    )

    assert response.status_code == 422
    assert "ids" in response.context["form"].errors
    assert not Job.objects.exists()
    assert engine_state(engine_cleanup, mine.docker_id) == "running"
    assert engine_state(engine_cleanup, theirs.docker_id) == "running"


# ---------------------------------------------------------------- assign


@pytest.mark.parametrize(
    "role, status",
    [
        ("outsider", 404),
        ("viewer", 403),
        # Giving a container to another team is a dashboard-admin action (ARCHITECTURE.md):
        # a team admin manages their own team's things, never hands them across.
        ("owner", 403),
        ("operator", 403),
        ("teamadmin", 403),
        ("dashadmin", 302),
        ("admin", 302),
    ],
)
def test_assign_team_is_admin_only(cast, login, local_host, role, status):
    row = Container.objects.create(
        host=local_host,
        docker_id=uuid.uuid4().hex * 2,
        name=unique("assign"),
        team=cast.alpha,
        owner=cast.owner,
    )

    response = login(cast.users[role]).post(
        reverse("containers:assign", args=[row.pk]), {"team": cast.beta.pk}
    )

    assert response.status_code == status
    row.refresh_from_db()
    entries = AuditEntry.objects.filter(action="container.assign", target_id=row.docker_id)
    if status == 302:
        assert row.team == cast.beta
        entry = entries.get()
        assert entry.username == role
        assert entry.params == {"from_team": "alpha", "to_team": "beta"}
    else:
        assert row.team == cast.alpha
        assert not entries.exists()


# ---------------------------------------------------------------- job page


@pytest.mark.parametrize(
    "role, status",
    [
        ("owner", 200),
        ("operator", 404),
        ("viewer", 404),
        ("outsider", 404),
        ("teamadmin", 404),  # a team role never opens other people's jobs
        ("dashadmin", 200),
        ("admin", 200),
    ],
)
def test_job_page_is_for_its_user_and_admins(cast, login, local_host, role, status):
    job = Job.objects.create(
        kind="container.action",
        user=cast.owner,
        host=local_host,
        target="secret-project-web",
        params={"action": "stop"},
        status=Job.Status.SUCCEEDED,
    )

    response = login(cast.users[role]).get(reverse("job", args=[job.pk]))

    assert response.status_code == status
    assert ("secret-project-web" in response.content.decode()) == (status == 200)


# ---------------------------------------------------------------- create


def create_data(cast, local_host, name, **extra):
    return create_form_data(local_host, cast.alpha, name, **extra)


@pytest.mark.parametrize("role, status", [("viewer", 403), ("outsider", 422)])
def test_create_for_alpha_refused_creates_nothing(
    cast, login, local_host, engine_cleanup, celery_worker, role, status
):
    name = unique("mk")

    response = login(cast.users[role]).post(
        reverse("containers:new"), create_data(cast, local_host, name)
    )

    assert response.status_code == status
    if role == "outsider":
        # Team alpha is not among the outsider's choices (they cannot see it).
        assert "team" in response.context["form"].errors
    assert not Job.objects.exists()
    assert not Container.objects.filter(name=name).exists()
    assert name not in engine_names(engine_cleanup)


@pytest.mark.parametrize("role", ALLOWED)
def test_create_for_alpha_allowed_runs_and_records_owner_and_team(
    cast, login, local_host, engine_cleanup, celery_worker, role
):
    name = unique("mk")

    response = login(cast.users[role]).post(
        reverse("containers:new"), create_data(cast, local_host, name)
    )

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Container.objects.get(name=name)
    assert (row.owner, row.team) == (cast.users[role], cast.alpha)
    assert engine_state(engine_cleanup, row.docker_id) == "running"


# ---------------------------------------------------------------- containers made elsewhere


def test_unowned_container_is_visible_to_admins_only(cast, login, engine_cleanup, local_host):
    made = engine_cleanup.containers.run(
        settings.TEST_IMAGE,
        LOOP,
        name=unique("cli"),
        # The run label too: another test run's cleanup leaves this run's containers alone.
        labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID},
        detach=True,
    )
    sync_host(local_host)
    row = Container.objects.get(docker_id=made.id)
    assert (row.owner, row.team) == (None, None)

    for role, user in cast.users.items():
        client = login(user)
        page = client.get(reverse("containers:list"))
        detail = client.get(reverse("containers:detail", args=[row.pk]))
        if role in ("admin", "dashadmin"):
            assert made.id in listed(page), role
            assert detail.status_code == 200, role
            assert "assign" in detail.context["actions"], role
        else:
            assert made.id not in listed(page), role
            assert detail.status_code == 404, role
            stop = client.post(reverse("containers:action", args=[row.pk, "stop"]))
            assert stop.status_code == 404, role
    assert not Job.objects.exists()
    assert engine_state(engine_cleanup, made.id) == "running"


def test_cli_labels_naming_a_user_give_no_access_until_an_admin_assigns(
    cast, login, engine_cleanup, local_host
):
    name = unique("forged")
    forged = {
        "owner": "viewer",
        "dockyard.owner": "viewer",
        "dockyard.team": "alpha",
        "com.example.owner": "viewer",
    }
    label_args = [arg for k, v in forged.items() for arg in ("--label", f"{k}={v}")]
    docker_id = subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1"]
        + ["--label", f"{RUN_LABEL}={settings.RUN_ID}", *label_args]
        + [settings.TEST_IMAGE, *LOOP],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    # The viewer's own list page is what first mirrors the container.
    viewer = login(cast.viewer)
    page = viewer.get(reverse("containers:list"))
    row = Container.objects.get(docker_id=docker_id)
    assert docker_id not in listed(page)
    assert (row.owner, row.team) == (None, None)
    assert viewer.get(reverse("containers:detail", args=[row.pk])).status_code == 404
    for role in ("owner", "operator", "outsider"):
        client = login(cast.users[role])
        assert client.get(reverse("containers:detail", args=[row.pk])).status_code == 404

    admin = login(cast.admin)
    response = admin.post(reverse("containers:assign", args=[row.pk]), {"team": cast.alpha.pk})
    assert response.status_code == 302

    row.refresh_from_db()
    assert (row.owner, row.team) == (None, cast.alpha)  # labels still ignored for owner
    entry = AuditEntry.objects.get(action="container.assign", target_id=docker_id)
    assert (entry.username, entry.team, entry.target_name) == ("admin", cast.alpha, name)
    assert entry.params == {"from_team": None, "to_team": "alpha"}
    for role in ("viewer", "operator", "owner"):
        client = login(cast.users[role])
        assert client.get(reverse("containers:detail", args=[row.pk])).status_code == 200
        assert docker_id in listed(client.get(reverse("containers:list"))), role
        # Teammates see the assignment in their audit log.
        assert (
            access.restrict(cast.users[role], AuditEntry.objects.all()).filter(pk=entry.pk).exists()
        )
    outsider = login(cast.outsider)
    assert outsider.get(reverse("containers:detail", args=[row.pk])).status_code == 404
    # Seeing is not acting: the viewer named in the labels still cannot stop it.
    stop = login(cast.viewer).post(reverse("containers:action", args=[row.pk, "stop"]))
    assert stop.status_code == 403
    assert engine_state(engine_cleanup, docker_id) == "running"


# ---------------------------------------------------------------- revoked while queued


def revoke(cast, user, change):
    membership = Membership.objects.filter(user=user, team=cast.alpha)
    if change == "removed":
        membership.delete()
    elif change == "demoted":
        membership.update(role=Role.VIEWER)
    else:  # the host is no longer open to the team
        Host.objects.update(all_teams=False)


@pytest.mark.parametrize("change", ["removed", "demoted", "host_ungranted"])
def test_action_queued_then_role_revoked_fails_in_worker_and_engine_is_untouched(
    cast, login, alpha_container, engine_cleanup, celery_worker, change
):
    row = alpha_container()
    client = login(cast.operator)
    # The job row is committed, and its task sent, only when this block ends
    # (transaction.on_commit): by then the operator has lost the role, so the
    # worker's re-check is what stands between the queued job and the engine.
    with transaction.atomic():
        response = client.post(reverse("containers:action", args=[row.pk, "stop"]))
        assert response.status_code == 302
        job = Job.objects.get(container=row)
        revoke(cast, cast.operator, change)

    job = wait_job(job)
    assert job.status == Job.Status.FAILED
    assert job.message.startswith("Permission denied"), job.message
    assert engine_state(engine_cleanup, row.docker_id) == "running"
    entry = AuditEntry.objects.get(action="container.stop", target_id=row.docker_id)
    assert (entry.username, entry.result) == ("operator", AuditEntry.Result.DENIED)


@pytest.mark.parametrize("change", ["removed", "demoted", "host_ungranted"])
def test_create_queued_then_role_revoked_fails_in_worker_and_creates_nothing(
    cast, login, local_host, engine_cleanup, celery_worker, change
):
    name = unique("mk")
    client = login(cast.operator)
    with transaction.atomic():
        response = client.post(reverse("containers:new"), create_data(cast, local_host, name))
        assert response.status_code == 302
        job = Job.objects.get(kind="container.create")
        revoke(cast, cast.operator, change)

    job = wait_job(job)
    assert job.status == Job.Status.FAILED
    assert job.message.startswith("Permission denied"), job.message
    assert name not in engine_names(engine_cleanup)
    assert not Container.objects.filter(name=name).exists()
