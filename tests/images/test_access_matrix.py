"""Who may do what to an image: every page and action, for the owner, each role of the
owning team, an outsider (operator of another team) and dashboard admins.

Hidden → 404, visible but not allowed → 403, allowed → a queued job (the worker is
not running: no job is executed here). Handlers re-check access when they run.
"""

import pytest
from django.urls import reverse

from dashboard import jobs
from dashboard.models import AuditEntry, Job, Membership, Role
from images.models import Image

ROLES = ["owner", "operator", "viewer", "teamadmin", "outsider", "admin", "dashadmin"]


def _status(login, user, method, url, data=None):
    client = login(user)
    response = client.post(url, data or {}) if method == "post" else client.get(url)
    return response.status_code


DETAIL = {
    "owner": 200,
    "operator": 200,
    "viewer": 200,
    "teamadmin": 200,
    "outsider": 404,
    "admin": 200,
    "dashadmin": 200,
}
# Operator actions on alpha's image: tag, push, remove, copy, export.
OPERATOR_ACTION = {
    "owner": 302,
    "operator": 302,
    "viewer": 403,
    "teamadmin": 302,
    "outsider": 404,
    "admin": 302,
    "dashadmin": 302,
}
# Dashboard admins only: assign, share, force remove.
ADMIN_ACTION = {
    "owner": 403,
    "operator": 403,
    "viewer": 403,
    "teamadmin": 403,
    "outsider": 404,
    "admin": 302,
    "dashadmin": 302,
}


@pytest.fixture
def matrix(cast, dashadmin, local_host, alpha_image, no_task_queue):
    return cast, alpha_image


@pytest.fixture
def second_host_row(cast):
    """A host granted to alpha to copy to (no job runs: no engine is needed there)."""
    from dashboard.models import Host

    host = Host.objects.create(name="elsewhere", url="unix:///nonexistent/docker.sock")
    host.teams.add(cast.alpha)
    return host


def _each_role(login, cast, method, url, data=None):
    """{role: status} for every role of the cast (one database, one image: cheaper
    than a test per role, and a failure names the role)."""
    return {role: _status(login, cast.users[role], method, url, data) for role in ROLES}


def test_detail_page(matrix, login):
    cast, image = matrix
    assert _each_role(login, cast, "get", reverse("images:detail", args=[image.pk])) == DETAIL


@pytest.mark.parametrize(
    "action,data",
    [
        ("tag", {"target": "dyimg-matrix/other:2"}),
        ("push", "tag"),
        ("remove", {}),
        ("copy", "host"),
    ],
)
def test_operator_actions(matrix, login, second_host_row, action, data):
    cast, image = matrix
    if data == "tag":
        data = {"tag": image.tags[0]}
    elif data == "host":
        data = {"to_host": second_host_row.pk}
    url = reverse(f"images:{action}", args=[image.pk])
    statuses = _each_role(login, cast, "post", url, data)
    assert statuses == OPERATOR_ACTION
    queued = Job.objects.filter(kind=f"image.{action}").count()
    assert queued == sum(1 for s in statuses.values() if s == 302)


def test_export_streams_for_operators_only(matrix, login):
    cast, image = matrix
    for role in ROLES:
        response = login(cast.users[role]).post(reverse("images:export", args=[image.pk]))
        expected = {302: 200}.get(OPERATOR_ACTION[role], OPERATOR_ACTION[role])
        assert response.status_code == expected, role
        if expected == 200:
            first = next(iter(response.streaming_content))
            assert len(first) > 0  # the engine's archive, streamed
            assert AuditEntry.objects.filter(action="image.export", user=cast.users[role]).exists()


@pytest.mark.parametrize("action,data", [("assign", "team"), ("share", {"shared": "1"})])
def test_admin_actions(matrix, login, action, data):
    cast, image = matrix
    if data == "team":
        data = {"team": cast.alpha.pk}
    url = reverse(f"images:{action}", args=[image.pk])
    assert _each_role(login, cast, "post", url, data) == ADMIN_ACTION


def test_force_remove_is_for_dashboard_admins(matrix, login):
    cast, image = matrix
    url = reverse("images:remove", args=[image.pk])
    assert _each_role(login, cast, "post", url, {"force": "on"}) == ADMIN_ACTION


def test_prune_is_for_dashboard_admins(matrix, login, local_host):
    cast, _image = matrix
    statuses = _each_role(login, cast, "post", reverse("images:prune"), {"host": local_host.pk})
    assert statuses == {r: 302 if r in ("admin", "dashadmin") else 403 for r in ROLES}
    assert Job.objects.filter(kind="image.prune").count() == 2


@pytest.mark.parametrize("page", ["images:pull", "images:build", "images:import"])
def test_create_pages_need_an_operator_role(matrix, login, page):
    cast, _image = matrix
    expected = {r: 403 if r == "viewer" else 200 for r in ROLES}
    assert _each_role(login, cast, "get", reverse(page)) == expected


def test_viewer_cannot_pull_by_post(matrix, login, local_host):
    cast, _image = matrix
    response = login(cast.viewer).post(
        reverse("images:pull"), {"host": local_host.pk, "team": cast.alpha.pk, "reference": "x:1"}
    )
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_list_shows_each_user_their_teams_images_and_shared_bases(matrix, login, shared_base):
    cast, image = matrix
    url = reverse("images:list")
    assert image.tags[0] in login(cast.viewer).get(url).content.decode()
    outsider_page = login(cast.outsider).get(url).content.decode()
    assert image.tags[0] not in outsider_page
    assert shared_base.tags[0] in outsider_page  # shared: every team of the host sees it
    # Unowned images (found on the engine) are for dashboard admins only.
    Image.objects.filter(pk=image.pk).update(team=None)
    assert image.tags[0] not in login(cast.owner).get(url).content.decode()
    assert image.tags[0] in login(cast.dashadmin).get(url).content.decode()


def test_outsider_cannot_act_on_a_shared_image_of_another_team(matrix, login):
    cast, image = matrix
    Image.objects.filter(pk=image.pk).update(shared=True)
    client = login(cast.outsider)
    assert client.get(reverse("images:detail", args=[image.pk])).status_code == 200
    for action in ("tag", "push", "remove", "copy", "export"):
        response = client.post(reverse(f"images:{action}", args=[image.pk]), {"tag": image.tags[0]})
        assert response.status_code == 403, action
    assert not Job.objects.exists()


def test_operator_of_another_team_cannot_use_a_registry_not_granted(
    matrix, login, local_host, registry
):
    cast, _image = matrix
    client = login(cast.outsider)
    by_pick = client.post(
        reverse("images:pull"),
        {
            "host": local_host.pk,
            "team": cast.beta.pk,
            "registry": registry.pk,
            "repository": "team/app",
            "tag": "1",
        },
    )
    by_reference = client.post(
        reverse("images:pull"),
        {
            "host": local_host.pk,
            "team": cast.beta.pk,
            "reference": f"{registry.address}/team/app:1",
        },
    )
    assert by_pick.status_code == 422  # not even in the outsider's choices
    assert by_reference.status_code == 422
    assert "not granted to team beta" in by_reference.content.decode()
    assert not Job.objects.exists()


def test_operator_cannot_pull_or_build_for_another_team(matrix, login, local_host):
    cast, _image = matrix
    client = login(cast.outsider)
    response = client.post(
        reverse("images:pull"), {"host": local_host.pk, "team": cast.alpha.pk, "reference": "x:1"}
    )
    assert response.status_code == 422  # alpha is not among the outsider's teams
    assert not Job.objects.exists()


def test_tag_of_another_teams_image_cannot_be_taken(matrix, login, local_host):
    cast, image = matrix
    # Alpha's tag pointed at an image of beta's would move under alpha's containers.
    response = login(cast.outsider).post(
        reverse("images:pull"),
        {"host": local_host.pk, "team": cast.beta.pk, "reference": image.tags[0]},
    )
    assert response.status_code == 422
    assert "names an image that is not your team" in response.content.decode()
    assert not Job.objects.exists()


def test_handler_checks_again_when_the_job_runs(matrix, login):
    cast, image = matrix
    response = login(cast.operator).post(
        reverse("images:tag", args=[image.pk]), {"target": "dyimg-matrix/late:1"}
    )
    assert response.status_code == 302
    job = Job.objects.get(kind="image.tag")
    Membership.objects.filter(user=cast.operator).update(role=Role.VIEWER)  # demoted

    job = jobs.run(job.pk)

    assert job.status == "failed" and "Permission denied" in job.message
    assert AuditEntry.objects.get(job_id=job.pk).result == "denied"


def test_pushing_to_a_registry_not_granted_to_the_team_is_refused(matrix, login, registry):
    cast, image = matrix
    registry.teams.set([cast.beta])  # the registry is beta's, not alpha's
    target = f"{registry.address}/dyimg-matrix/pushed:1"
    image.tags = [*image.tags, target]
    Image.objects.filter(pk=image.pk).update(tags=image.tags)

    response = login(cast.owner).post(reverse("images:push", args=[image.pk]), {"tag": target})

    assert response.status_code == 302 and response.url == reverse("images:detail", args=[image.pk])
    page = login(cast.owner).get(response.url).content.decode()
    assert f"Registry {registry.name} is not granted to team alpha" in page
    assert not Job.objects.exists()
