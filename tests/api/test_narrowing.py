"""Tokens narrow their user in the one gate (dashboard.access), and the pages and the
API agree: the same objects listed, the same 404/403, the token's limits on top.

These run on the database only: the objects live on a host whose engine is down
(pages and API then list the mirror as it is).
"""

import itertools

import pytest
from django.utils import timezone

from api.models import ApiToken
from containers.models import Container
from dashboard import access, jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Host, Job, Membership, Role, Team
from resources.models import Network, Volume
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

WHO = ["owner", "operator", "viewer", "teamadmin", "outsider", "dashadmin", "admin"]


@pytest.fixture
def world(cast, dashadmin):
    """alpha, beta and gamma things (operator is also in gamma) plus unowned ones, on a
    host open to all teams and a host granted to gamma only; both engines down."""
    gamma = Team.objects.create(name="gamma")
    Membership.objects.create(user=cast.operator, team=gamma, role=Role.OPERATOR)
    now = timezone.now()
    dead = dict(state=Host.State.UNREACHABLE, last_checked=now, last_error="down")
    shared = Host.objects.create(
        name="shared", url="unix:///nonexistent/a.sock", all_teams=True, **dead
    )
    g_host = Host.objects.create(name="g-only", url="unix:///nonexistent/b.sock", **dead)
    g_host.teams.add(gamma)
    ids = itertools.count(1)
    things = {}
    for team, host in [(cast.alpha, shared), (cast.beta, shared), (gamma, g_host), (None, shared)]:
        label = team.name if team else "nobody"
        things[label] = {
            "container": Container.objects.create(
                host=host,
                docker_id=f"{next(ids):064x}",
                name=f"c-{label}",
                team=team,
                state="running",
            ),
            "volume": Volume.objects.create(host=host, name=f"v-{label}", team=team),
            "network": Network.objects.create(
                host=host, name=f"n-{label}", team=team, docker_id=f"{next(ids):064x}"
            ),
        }
        AuditEntry.objects.create(action="container.stop", target_name=f"c-{label}", team=team)
    cast.gamma = gamma
    return things


def _token(user, **kw):
    return ApiToken(user=user, name="t", read_only=kw.get("read_only", False), team=kw.get("team"))


def _narrowed(user, **kw):
    user = type(user).objects.get(pk=user.pk)  # a fresh object: no cached roles
    return access.narrow(user, _token(user, **kw))


def _pks(user, model, action="view"):
    return set(access.restrict(user, model.objects.all(), action).values_list("pk", flat=True))


TABLES = [
    (Container, access.CONTAINER_ACTIONS),
    (Volume, access.RESOURCE_ACTIONS),
    (Network, access.RESOURCE_ACTIONS),
    (Team, access.TEAM_ACTIONS),
    (Host, access.HOST_ACTIONS),
    (AuditEntry, {"view": access.VIEWER}),
]


@pytest.mark.parametrize("who", WHO)
def test_a_full_token_is_exactly_its_user(cast, world, who):
    user = cast.users[who]
    for model, table in TABLES:
        for action in table:
            assert _pks(_narrowed(user), model, action) == _pks(user, model, action), (
                model,
                action,
            )


@pytest.mark.parametrize("who", WHO)
def test_a_read_only_token_sees_what_its_user_sees_and_does_nothing(cast, world, who):
    user = cast.users[who]
    token_user = _narrowed(user, read_only=True)
    for model, table in TABLES:
        for action, need in table.items():
            expected = _pks(user, model, action) if need == access.VIEWER else set()
            assert _pks(token_user, model, action) == expected, (model, action)
    assert not access.is_admin(token_user)


@pytest.mark.parametrize("who", WHO)
def test_a_team_token_reaches_that_teams_things_only(cast, world, who):
    user = cast.users[who]
    team = cast.alpha
    token_user = _narrowed(user, team=team)
    for model, table in TABLES:
        for action, need in table.items():
            allowed = access.restrict(user, model.objects.all(), action)
            if need is None:
                expected = set()  # dashboard-admin power never goes through a team token
            elif model is Team:
                expected = set(allowed.filter(pk=team.pk).values_list("pk", flat=True))
            elif model is Host:
                expected = set(
                    allowed.filter(pk__in=Host.objects.filter(all_teams=True)).values_list(
                        "pk", flat=True
                    )
                )
            else:
                expected = set(allowed.filter(team=team).values_list("pk", flat=True))
            assert _pks(token_user, model, action) == expected, (model, action)


def test_allowed_actions_follow_the_token(cast, world):
    c = world["alpha"]["container"]
    admin = cast.admin
    assert "assign" in access.allowed_actions(admin, c)
    assert access.allowed_actions(_narrowed(admin, read_only=True), c) == {"view", "logs", "stats"}
    assert "assign" not in access.allowed_actions(_narrowed(admin, team=cast.alpha), c)
    assert "stop" in access.allowed_actions(_narrowed(admin, team=cast.alpha), c)
    assert access.allowed_actions(_narrowed(cast.operator, team=cast.gamma), c) == set()


# ---------------------------------------------------------------- pages and API agree


def _page_names(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return {row[0].name for row in response.context["rows"]}


def _api_names(api, path):
    response = api.get(path)
    assert response.status_code == 200, response.content
    return {row["name"] for row in response.json()["results"]}


@pytest.mark.parametrize("who", WHO)
def test_pages_and_api_list_the_same_things(cast, world, login, make_token, who, settings):
    settings.MIRROR_FRESH_SECONDS = 600
    user = cast.users[who]
    page, full = login(user), Api(make_token(user))
    for kind in ("containers", "volumes", "networks"):
        assert _page_names(page, f"/{kind}/") == _api_names(full, f"/api/v1/{kind}/"), kind
    shown = {e.target_name for e in page.get("/audit/").context["page"].object_list}
    assert shown == {e["target_name"] for e in full.get("/api/v1/audit/").json()["results"]}
    hosts = {h.name for h in page.get("/hosts/").context["hosts"]}
    assert hosts == {h["name"] for h in full.get("/api/v1/hosts/").json()["results"]}


@pytest.mark.parametrize("who", WHO)
def test_pages_and_api_answer_the_same_status(cast, world, login, make_token, who, no_task_queue):
    user = cast.users[who]
    page, full = login(user), Api(make_token(user))
    for label, things in world.items():
        c, v = things["container"], things["volume"]
        # Reads: the detail page and the API detail (engine down: the page still answers).
        assert (
            page.get(f"/containers/{c.pk}/").status_code
            == full.get(f"/api/v1/containers/{c.pk}/").status_code
        ), label
        # Writes through the gate: 404 hidden, 403 refused; allowed ones are not sent here.
        page_status = page.post(f"/containers/{c.pk}/stop/").status_code
        api_status = full.post(f"/api/v1/containers/{c.pk}/stop/").status_code
        if page_status in (403, 404):
            assert api_status == page_status, label
        else:
            assert (page_status, api_status) == (302, 202), label
        page_status = page.post(f"/volumes/{v.pk}/remove/").status_code
        api_status = full.delete(f"/api/v1/volumes/{v.pk}/").status_code
        if page_status in (403, 404):
            assert api_status == page_status, label
        else:
            assert (page_status, api_status) == (302, 202), label


def test_a_team_token_does_not_see_the_users_other_teams(cast, world, make_token):
    """operator is in alpha and gamma; a token restricted to alpha sees alpha only."""
    api = Api(make_token(cast.operator, team=cast.alpha))
    assert _api_names(api, "/api/v1/containers/") == {"c-alpha"}
    assert _api_names(api, "/api/v1/volumes/") == {"v-alpha"}
    assert _api_names(api, "/api/v1/networks/") == {"n-alpha"}
    audit = api.get("/api/v1/audit/", action="container").json()["results"]
    assert {e["target_name"] for e in audit} == {"c-alpha"}
    assert {h["name"] for h in api.get("/api/v1/hosts/").json()["results"]} == {"shared"}
    gamma = world["gamma"]
    assert api.get(f"/api/v1/containers/{gamma['container'].pk}/").status_code == 404
    assert api.post(f"/api/v1/containers/{gamma['container'].pk}/stop/").status_code == 404
    assert api.delete(f"/api/v1/networks/{gamma['network'].pk}/").status_code == 404
    g_host = Host.objects.get(name="g-only")
    assert api.get(f"/api/v1/hosts/{g_host.pk}/").status_code == 404
    # Creating in the other team is refused by the same form as the page.
    response = api.post(
        "/api/v1/volumes/", {"host": g_host.pk, "team": cast.gamma.pk, "name": "sneaky"}
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"host", "team"}
    # The same user's session (and an unrestricted token) sees both teams.
    assert _api_names(Api(make_token(cast.operator)), "/api/v1/containers/") == {
        "c-alpha",
        "c-gamma",
    }
    assert not Job.objects.exists()


def test_a_read_only_admin_token_sees_everything_and_changes_nothing(cast, world, make_token):
    api = Api(make_token(cast.admin, read_only=True))
    assert _api_names(api, "/api/v1/containers/") == {"c-alpha", "c-beta", "c-gamma", "c-nobody"}
    c = world["nobody"]["container"]
    for path, body in [
        (f"/api/v1/containers/{c.pk}/stop/", {}),
        (f"/api/v1/containers/{c.pk}/remove/", {"force": True}),
        ("/api/v1/volumes/", {"host": "shared", "team": "alpha", "name": "x"}),
        ("/api/v1/containers/", {"host": "shared", "team": "alpha", "image": "busybox"}),
    ]:
        response = api.post(path, body)
        assert response.status_code == 403, path
        assert "read-only" in response.json()["error"]
    assert api.delete(f"/api/v1/volumes/{world['alpha']['volume'].pk}/").status_code == 403
    assert not Job.objects.exists()


def test_jobs_of_a_team_token_are_its_teams_only(cast, world, make_token, no_task_queue):
    c_alpha, c_gamma = world["alpha"]["container"], world["gamma"]["container"]
    session_job = jobs.enqueue(
        Actor(cast.operator), "container.action", container=c_gamma, params={"action": "stop"}
    )
    alpha = Api(make_token(cast.operator, team=cast.alpha))
    accepted = alpha.post(f"/api/v1/containers/{c_alpha.pk}/stop/")
    assert accepted.status_code == 202
    job_id = accepted.json()["job"]
    assert accepted.json()["url"] == f"/api/v1/jobs/{job_id}/"
    assert alpha.get(f"/api/v1/jobs/{job_id}/").status_code == 200
    assert alpha.get(f"/api/v1/jobs/{session_job.pk}/").status_code == 404
    assert Api(make_token(cast.operator)).get(f"/api/v1/jobs/{session_job.pk}/").status_code == 200
    assert Api(make_token(cast.viewer)).get(f"/api/v1/jobs/{job_id}/").status_code == 404


def test_the_worker_refuses_a_job_whose_token_was_revoked(cast, world, make_token, no_task_queue):
    """A token revoked after the request still stops the job, as a revoked role does."""
    c = world["alpha"]["container"]
    api = Api(make_token(cast.operator, name="ci"))
    job_id = api.post(f"/api/v1/containers/{c.pk}/stop/").json()["job"]
    ApiToken.objects.update(revoked_at=timezone.now())

    job = jobs.run(job_id)

    assert job.status == Job.Status.FAILED
    assert "revoked" in job.message
    entry = AuditEntry.objects.get(result=AuditEntry.Result.DENIED)
    assert (entry.username, entry.api_token_name) == ("operator", "ci")


def test_the_worker_narrows_the_jobs_user_by_its_token(cast, world, make_token, no_task_queue):
    """A job keeps its token's limits in the worker: the handler's own re-check applies
    the team restriction (here the container moved to another team meanwhile)."""
    c = world["alpha"]["container"]
    api = Api(make_token(cast.operator, name="ci", team=cast.alpha))
    job_id = api.post(f"/api/v1/containers/{c.pk}/stop/").json()["job"]
    Container.objects.filter(pk=c.pk).update(team=cast.gamma)  # operator still may, as gamma

    job = jobs.run(job_id)

    assert job.status == Job.Status.FAILED, job.message
    assert job.message.startswith("Permission denied")
    entry = AuditEntry.objects.get(result=AuditEntry.Result.DENIED)
    assert entry.api_token_name == "ci"


def test_list_queries_do_not_grow_with_the_number_of_rows(cast, world, make_token, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.MIRROR_FRESH_SECONDS = 600
    api = Api(make_token(cast.teamadmin))
    shared = Host.objects.get(name="shared")

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/v1/containers/").status_code == 200
        return len(queries)

    count()  # the token's first use writes "last used"; later ones within 30 s do not
    few = count()
    for i in range(20):
        Container.objects.create(host=shared, docker_id=f"{i + 1000:064x}", name=f"more-{i}",
                                 team=cast.alpha, owner=cast.owner)  # fmt: skip
    assert count() == few
