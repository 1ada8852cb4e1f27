"""The permission gate (dashboard/access.py) on database rows only: no engine, no worker."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from containers.models import Container
from dashboard import access
from dashboard.models import AuditEntry, Host, Job, Membership, Profile, Role, Team

pytestmark = [pytest.mark.django_db]

ALL_CONTAINER_ACTIONS = set(access.CONTAINER_ACTIONS)
READ_ACTIONS = {"view", "logs", "stats"}
OPERATOR_ACTIONS = ALL_CONTAINER_ACTIONS - {"assign"}


def fresh(user):
    """The user as a new request would load it: no per-request role caches."""
    return get_user_model().objects.get(pk=user.pk)


def row(host, team=None, owner=None, name=None):
    return Container.objects.create(
        host=host,
        docker_id=uuid.uuid4().hex * 2,
        name=name or f"c-{uuid.uuid4().hex[:6]}",
        state="running",
        team=team,
        owner=owner,
    )


@pytest.fixture
def rows(cast, local_host):
    """One container per ownership case."""
    return type(
        "Rows",
        (),
        {
            "alpha": row(local_host, cast.alpha, cast.owner, "alpha-web"),
            "beta": row(local_host, cast.beta, cast.outsider, "beta-web"),
            "unowned": row(local_host, None, None, "cli-made"),
        },
    )


def visible(user, action="view"):
    qs = access.restrict(fresh(user), Container.objects.all(), action)
    return set(qs.values_list("name", flat=True))


# ---------------------------------------------------------------- default deny


@pytest.mark.parametrize("who", ["viewer", "admin"])
@pytest.mark.parametrize(
    "model", [Container, Team, Host, AuditEntry, Job], ids=lambda m: m.__name__
)
def test_unknown_action_raises_value_error_even_for_admins(cast, rows, who, model):
    with pytest.raises(ValueError):
        access.restrict(fresh(cast.users[who]), model.objects.all(), "sudo")


@pytest.mark.parametrize("who", ["viewer", "admin"])
def test_require_with_unknown_action_raises_instead_of_allowing(cast, rows, who):
    with pytest.raises(ValueError):
        access.require(fresh(cast.users[who]), rows.alpha, "stpo")


def test_restrict_on_a_model_without_rules_raises(cast):
    with pytest.raises(ValueError, match="no access rules"):
        access.restrict(fresh(cast.admin), Membership.objects.all(), "view")


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_audit_entries_and_jobs_can_only_be_viewed(cast, action):
    for model in (AuditEntry, Job):
        with pytest.raises(ValueError):
            access.restrict(fresh(cast.admin), model.objects.all(), action)


# ---------------------------------------------------------------- is_admin


@pytest.mark.parametrize(
    "who, expected",
    [
        ("admin", True),
        ("dashadmin", True),
        ("teamadmin", False),  # a team's admin role is not dashboard power
        ("owner", False),
        ("operator", False),
        ("viewer", False),
        ("outsider", False),
    ],
)
def test_is_admin_for_superusers_and_flagged_users_only(cast, dashadmin, who, expected):
    assert access.is_admin(fresh(cast.users[who])) is expected


def test_a_profile_without_the_flag_is_not_an_admin(cast):
    Profile.objects.create(user=cast.operator, dashboard_admin=False)
    assert access.is_admin(fresh(cast.operator)) is False


def test_is_admin_false_for_anonymous_and_inactive_superuser(cast):
    assert access.is_admin(AnonymousUser()) is False
    assert access.is_admin(None) is False
    cast.admin.is_active = False
    cast.admin.save()
    assert access.is_admin(fresh(cast.admin)) is False


def test_fresh_user_rereads_the_admin_flag_and_drops_deactivated_users(cast):
    user = fresh(cast.operator)
    assert access.is_admin(user) is False
    Profile.objects.create(user=cast.operator, dashboard_admin=True)
    assert access.is_admin(user) is False  # cached for the request
    assert access.is_admin(access.fresh_user(user)) is True
    assert access.is_admin(access.fresh_user(user.pk)) is True
    Profile.objects.filter(user=cast.operator).update(dashboard_admin=False)
    assert access.is_admin(access.fresh_user(user)) is False
    cast.operator.is_active = False
    cast.operator.save()
    assert access.fresh_user(user) is None
    assert access.fresh_user(None) is None


def test_a_team_admin_role_grants_nothing_beyond_that_team(cast, rows):
    # Promoting a member to their team's admin does not make them a dashboard admin.
    Membership.objects.filter(user=cast.operator, team=cast.alpha).update(role=Role.ADMIN)
    user = fresh(cast.operator)
    assert access.is_admin(user) is False
    assert visible(user) == {"alpha-web"}
    assert visible(user, "assign") == set()


# ---------------------------------------------------------------- containers


@pytest.mark.parametrize(
    "who, expected",
    [
        ("owner", {"alpha-web"}),
        ("operator", {"alpha-web"}),
        ("viewer", {"alpha-web"}),
        ("outsider", {"beta-web"}),
        ("teamadmin", {"alpha-web"}),
        ("dashadmin", {"alpha-web", "beta-web", "cli-made"}),
        ("admin", {"alpha-web", "beta-web", "cli-made"}),
    ],
)
def test_container_visibility_by_team_and_unowned_for_admins_only(
    cast, dashadmin, rows, who, expected
):
    assert visible(cast.users[who]) == expected


@pytest.mark.parametrize(
    "who, expected",
    [
        ("viewer", set()),
        ("operator", {"alpha-web"}),
        ("outsider", {"beta-web"}),
        ("teamadmin", {"alpha-web"}),
        ("dashadmin", {"alpha-web", "beta-web", "cli-made"}),
        ("admin", {"alpha-web", "beta-web", "cli-made"}),
    ],
)
def test_write_actions_need_operator_role_in_the_containers_team(
    cast, dashadmin, rows, who, expected
):
    assert visible(cast.users[who], "stop") == expected


def test_assign_is_for_dashboard_admins_only(cast, dashadmin, rows):
    assert visible(cast.operator, "assign") == set()
    assert visible(cast.owner, "assign") == set()
    assert visible(cast.teamadmin, "assign") == set()
    with pytest.raises(PermissionDenied):
        access.require(fresh(cast.teamadmin), rows.alpha, "assign")
    with pytest.raises(Http404):
        access.require(fresh(cast.teamadmin), rows.unowned, "assign")
    assert visible(dashadmin, "assign") == {"alpha-web", "beta-web", "cli-made"}
    assert visible(cast.admin, "assign") == {"alpha-web", "beta-web", "cli-made"}


def test_role_is_per_team_not_the_highest_anywhere(cast, rows):
    # Operator in beta, only viewer in alpha: may stop beta's container, not alpha's.
    user = get_user_model().objects.create_user("mixed", password="x-pass-123!")
    Membership.objects.create(user=user, team=cast.alpha, role=Role.VIEWER)
    Membership.objects.create(user=user, team=cast.beta, role=Role.OPERATOR)
    assert visible(user) == {"alpha-web", "beta-web"}
    assert visible(user, "stop") == {"beta-web"}
    with pytest.raises(PermissionDenied):
        access.require(fresh(user), rows.alpha, "stop")
    assert access.require(fresh(user), rows.beta, "stop") == rows.beta


def test_inactive_user_sees_nothing(cast, rows, local_host):
    AuditEntry.objects.create(action="container.stop", team=cast.alpha)
    Job.objects.create(kind="container.action", user=cast.owner)
    cast.owner.is_active = False
    cast.owner.save()
    user = fresh(cast.owner)
    for model in (Container, Team, Host, AuditEntry, Job):
        assert not access.restrict(user, model.objects.all(), "view").exists(), model
    with pytest.raises(Http404):
        access.require(user, rows.alpha, "view")


def test_anonymous_user_sees_nothing(cast, rows, local_host):
    for model in (Container, Team, Host):
        assert not access.restrict(AnonymousUser(), model.objects.all(), "view").exists()


def test_require_hidden_is_404_visible_but_not_allowed_is_403(cast, rows):
    with pytest.raises(Http404):
        access.require(fresh(cast.outsider), rows.alpha, "stop")
    with pytest.raises(Http404):
        access.require(fresh(cast.outsider), rows.alpha, "view")
    with pytest.raises(PermissionDenied):
        access.require(fresh(cast.viewer), rows.alpha, "stop")
    assert access.require(fresh(cast.viewer), rows.alpha, "logs") == rows.alpha
    assert access.require(fresh(cast.operator), rows.alpha, "stop") == rows.alpha
    with pytest.raises(Http404):
        access.require(fresh(cast.operator), rows.unowned, "view")
    assert access.require(fresh(cast.admin), rows.unowned, "remove") == rows.unowned


def test_get_or_404(cast, rows):
    qs = Container.objects.all()
    assert access.get_or_404(fresh(cast.viewer), qs, pk=rows.alpha.pk) == rows.alpha
    with pytest.raises(Http404):
        access.get_or_404(fresh(cast.outsider), qs, pk=rows.alpha.pk)
    with pytest.raises(Http404):
        access.get_or_404(fresh(cast.admin), qs, pk=rows.alpha.pk + 1000)
    with pytest.raises(PermissionDenied):
        access.get_or_404(fresh(cast.viewer), qs, "kill", pk=rows.alpha.pk)
    assert access.get_or_404(fresh(cast.owner), qs, "kill", pk=rows.alpha.pk) == rows.alpha


@pytest.mark.parametrize(
    "who, target, expected",
    [
        ("viewer", "alpha", READ_ACTIONS),
        ("owner", "alpha", OPERATOR_ACTIONS),
        ("operator", "alpha", OPERATOR_ACTIONS),
        ("teamadmin", "alpha", OPERATOR_ACTIONS),
        ("teamadmin", "beta", set()),
        ("teamadmin", "unowned", set()),
        ("dashadmin", "beta", ALL_CONTAINER_ACTIONS),
        ("dashadmin", "unowned", ALL_CONTAINER_ACTIONS),
        ("admin", "unowned", ALL_CONTAINER_ACTIONS),
        ("outsider", "alpha", set()),
        ("operator", "unowned", set()),
        ("viewer", "beta", set()),
    ],
)
def test_allowed_actions_match_require(cast, dashadmin, rows, who, target, expected):
    user = fresh(cast.users[who])
    container = getattr(rows, target)
    assert access.allowed_actions(user, container) == expected
    # The buttons shown must be exactly what the gate lets through.
    assert {a for a in ALL_CONTAINER_ACTIONS if access.can(user, container, a)} == expected


# ---------------------------------------------------------------- teams and hosts


def test_team_visibility_and_create_rights(cast):
    def names(who, action):
        qs = access.restrict(fresh(cast.users[who]), Team.objects.all(), action)
        return set(qs.values_list("name", flat=True))

    assert names("viewer", "view") == {"alpha"}
    assert names("outsider", "view") == {"beta"}
    assert names("viewer", "create_container") == set()
    assert names("operator", "create_container") == {"alpha"}
    assert names("operator", "privileged") == set()
    assert names("admin", "privileged") == {"alpha", "beta"}
    assert set(access.creatable_teams(fresh(cast.outsider)).values_list("name", flat=True)) == {
        "beta"
    }


def test_hosts_are_visible_to_members_of_any_team_only(cast, local_host):
    lonely = get_user_model().objects.create_user("lonely", password="x-pass-123!")
    hosts = Host.objects.all()
    assert access.restrict(fresh(cast.viewer), hosts, "view").count() == 1
    assert access.restrict(fresh(cast.outsider), hosts, "view").count() == 1
    assert not access.restrict(lonely, hosts, "view").exists()
    with pytest.raises(Http404):
        access.get_or_404(lonely, hosts, pk=local_host.pk)


def test_host_create_needs_operator_and_manage_needs_dashboard_admin(cast, dashadmin, local_host):
    hosts = Host.objects.all()
    assert not access.restrict(fresh(cast.viewer), hosts, "create_container").exists()
    assert access.restrict(fresh(cast.operator), hosts, "create_container").exists()
    for who in ("viewer", "operator", "owner", "outsider", "teamadmin"):
        assert not access.restrict(fresh(cast.users[who]), hosts, "manage").exists(), who
        with pytest.raises(PermissionDenied):
            access.require(fresh(cast.users[who]), local_host, "manage")
    for who in ("dashadmin", "admin"):
        assert access.require(fresh(cast.users[who]), local_host, "manage") == local_host


def test_hosts_and_their_containers_are_seen_only_by_granted_teams(cast, dashadmin, rows):
    beta_only = Host.objects.create(name="beta-only", url="unix:///nowhere.sock")
    beta_only.teams.add(cast.beta)
    on_it = row(beta_only, cast.alpha, cast.owner, "alpha-on-beta-host")
    hosts = Host.objects.filter(pk=beta_only.pk)
    for who in ("owner", "viewer", "teamadmin"):
        user = fresh(cast.users[who])
        assert not access.restrict(user, hosts, "view").exists(), who
        assert "alpha-on-beta-host" not in visible(user), who
        with pytest.raises(Http404):
            access.require(user, on_it, "view")
    assert access.restrict(fresh(cast.outsider), hosts, "create_container").exists()
    assert "alpha-on-beta-host" not in visible(cast.outsider)  # alpha's, not beta's
    for who in ("dashadmin", "admin"):
        assert "alpha-on-beta-host" in visible(cast.users[who]), who
    beta_only.teams.add(cast.alpha)
    assert "alpha-on-beta-host" in visible(cast.owner)
    assert "alpha-on-beta-host" in visible(cast.owner, "stop")


# ---------------------------------------------------------------- audit entries and jobs


@pytest.fixture
def entries(cast, local_host):
    return {
        "alpha": AuditEntry.objects.create(action="container.stop", team=cast.alpha),
        "beta": AuditEntry.objects.create(action="container.kill", team=cast.beta),
        "none": AuditEntry.objects.create(action="host.create", team=None),
    }


@pytest.mark.parametrize(
    "who, expected",
    [
        ("admin", {"alpha", "beta", "none"}),
        ("dashadmin", {"alpha", "beta", "none"}),
        ("teamadmin", {"alpha"}),
        ("owner", {"alpha"}),
        ("viewer", {"alpha"}),
        ("outsider", {"beta"}),
    ],
)
def test_audit_entries_admins_see_all_members_their_teams_only(
    cast, dashadmin, entries, who, expected
):
    seen = set(access.restrict(fresh(cast.users[who]), AuditEntry.objects.all(), "view"))
    assert seen == {entries[k] for k in expected}


def test_audit_entries_of_no_team_are_hidden_from_users_without_team(cast, entries):
    lonely = get_user_model().objects.create_user("lonely", password="x-pass-123!")
    assert not access.restrict(lonely, AuditEntry.objects.all(), "view").exists()
    with pytest.raises(Http404):
        access.require(fresh(cast.viewer), entries["none"], "view")


@pytest.mark.parametrize(
    "who, expected",
    [
        ("owner", {"owner"}),
        ("operator", {"operator"}),
        ("viewer", set()),
        ("outsider", set()),
        ("teamadmin", set()),
        ("dashadmin", {"owner", "operator", "system"}),
        ("admin", {"owner", "operator", "system"}),
    ],
)
def test_jobs_are_visible_to_their_user_and_admins_only(cast, dashadmin, who, expected):
    jobs = {
        "owner": Job.objects.create(kind="container.action", user=cast.owner),
        "operator": Job.objects.create(kind="container.action", user=cast.operator),
        "system": Job.objects.create(kind="container.action", user=None),
    }
    seen = set(access.restrict(fresh(cast.users[who]), Job.objects.all(), "view"))
    assert seen == {jobs[k] for k in expected}


# ---------------------------------------------------------------- query count


def list_queries(user):
    """Queries to list the containers a user sees and compute each row's buttons."""
    user = fresh(user)
    with CaptureQueriesContext(connection) as ctx:
        qs = access.restrict(user, Container.objects.select_related("host", "team"), "view")
        rows = [(c, access.allowed_actions(user, c)) for c in qs]
    return len(ctx.captured_queries), len(rows)


@pytest.mark.parametrize("who", ["viewer", "operator", "admin", "teamadmin", "dashadmin"])
def test_restrict_query_count_does_not_grow_with_containers(
    cast, dashadmin, local_host, who, django_assert_max_num_queries
):
    user = cast.users[who]
    for _ in range(2):
        row(local_host, cast.alpha)
    few, n_few = list_queries(user)
    for _ in range(60):
        row(local_host, cast.alpha)
    many, n_many = list_queries(user)
    assert (n_few, n_many) == (2, 62)
    assert many == few
    # is_admin, the filtered list, the user's roles: three at most, whatever N.
    user = fresh(user)
    with django_assert_max_num_queries(3):
        qs = access.restrict(user, Container.objects.all(), "view")
        assert len([access.allowed_actions(user, c) for c in qs]) == 62
