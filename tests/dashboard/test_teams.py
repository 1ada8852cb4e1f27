"""Teams, memberships and users: admins manage them (audited); others read their own teams."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from containers.models import Container
from dashboard import services
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Host, Membership, Role, Team

pytestmark = [pytest.mark.django_db]

NON_ADMINS = ["owner", "operator", "viewer", "outsider"]


def audit_actions():
    return [
        (e.action, e.target_name, e.params.get("role")) for e in AuditEntry.objects.order_by("id")
    ]


def test_admin_creates_a_team_and_it_is_audited(cast, login):
    client = login(cast.admin)
    response = client.post(reverse("team_list"), {"name": "gamma", "description": "G team"})
    team = Team.objects.get(name="gamma")
    assert response.status_code == 302
    assert response.url == reverse("team_detail", args=[team.pk])
    assert team.description == "G team"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.username, entry.team_id) == ("team.create", "admin", team.pk)
    assert entry.target_name == "gamma"


def test_duplicate_team_name_is_a_form_error(cast, login):
    response = login(cast.admin).post(reverse("team_list"), {"name": "alpha"})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert Team.objects.filter(name="alpha").count() == 1
    assert not AuditEntry.objects.exists()


def test_team_admin_role_is_not_dashboard_admin(cast, login):
    client = login(cast.teamadmin)
    before = get_user_model().objects.count()
    assert client.post(reverse("team_list"), {"name": "delta"}).status_code == 403
    assert client.post(reverse("team_delete", args=[cast.alpha.pk])).status_code == 403
    assert client.post(reverse("team_delete", args=[cast.beta.pk])).status_code == 404
    response = client.post(
        reverse("user_create"), {"username": "sneaky", "password": "long-enough-1"}
    )
    assert response.status_code == 403
    assert (
        client.post(reverse("user_flags", args=[cast.viewer.pk]), {"active": "0"}).status_code
        == 403
    )
    response = client.post(
        reverse("user_flags", args=[cast.teamadmin.pk]), {"dashboard_admin": "1"}
    )
    assert response.status_code == 403
    # Beta is another team's business: invisible, so its pages and members are 404.
    beta_detail = reverse("team_detail", args=[cast.beta.pk])
    assert client.get(beta_detail).status_code == 404
    response = client.post(beta_detail, {"add_member": "1", "user": "teamadmin", "role": "admin"})
    assert response.status_code == 404
    outsider = Membership.objects.get(user=cast.outsider, team=cast.beta)
    response = client.post(reverse("membership_edit", args=[outsider.pk]), {"remove": "1"})
    assert response.status_code == 404
    page = client.get(reverse("team_list")).content.decode()
    assert reverse("user_create") not in page
    assert reverse("team_detail", args=[cast.beta.pk]) not in page
    assert sorted(Team.objects.values_list("name", flat=True)) == ["alpha", "beta"]
    assert get_user_model().objects.count() == before
    assert get_user_model().objects.get(pk=cast.viewer.pk).is_active
    assert Membership.objects.filter(user=cast.outsider, team=cast.beta).exists()
    assert not Membership.objects.filter(user=cast.teamadmin, team=cast.beta).exists()
    assert not AuditEntry.objects.filter(result=AuditEntry.Result.OK).exists()


def test_team_admin_manages_their_own_teams_members_and_settings(cast, login, django_user_model):
    newbie = django_user_model.objects.create_user("newbie", password="x-pass-12345")
    client = login(cast.teamadmin)
    detail = reverse("team_detail", args=[cast.alpha.pk])
    page = client.get(detail).content.decode()
    assert 'name="add_member"' in page
    assert reverse("team_delete", args=[cast.alpha.pk]) not in page  # deleting is global

    response = client.post(detail, {"add_member": "1", "user": "newbie", "role": "viewer"})
    assert response.status_code == 302
    membership = Membership.objects.get(user=newbie, team=cast.alpha)
    response = client.post(reverse("membership_edit", args=[membership.pk]), {"role": "operator"})
    assert response.status_code == 302
    response = client.post(reverse("membership_edit", args=[membership.pk]), {"remove": "1"})
    assert response.status_code == 302
    assert not Membership.objects.filter(user=newbie).exists()
    response = client.post(detail, {"name": "alpha", "description": "ours"})
    assert response.status_code == 302
    cast.alpha.refresh_from_db()
    assert cast.alpha.description == "ours"
    assert audit_actions() == [
        ("team.member_add", "newbie", "viewer"),
        ("team.member_role", "newbie", "operator"),
        ("team.member_remove", "newbie", "operator"),
        ("team.update", "alpha", None),
    ]
    assert set(AuditEntry.objects.values_list("username", flat=True)) == {"teamadmin"}


def test_dashboard_admin_by_flag_manages_teams_and_users(cast, dashadmin, login):
    client = login(dashadmin)
    response = client.post(reverse("team_list"), {"name": "delta"})
    assert response.status_code == 302
    delta = Team.objects.get(name="delta")
    response = client.post(
        reverse("team_detail", args=[delta.pk]),
        {"add_member": "1", "user": "outsider", "role": "admin"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=cast.outsider, team=delta).role == Role.ADMIN
    response = client.post(
        reverse("user_create"), {"username": "carol", "password": "carol-pass-987"}
    )
    assert response.status_code == 302
    assert client.post(reverse("team_delete", args=[delta.pk])).status_code == 302
    assert [a for a, _, _ in audit_actions()] == [
        "team.create",
        "team.member_add",
        "user.create",
        "team.remove",
    ]
    assert set(AuditEntry.objects.values_list("username", flat=True)) == {"dashadmin"}


def test_adding_an_unknown_or_inactive_username_is_a_form_error(cast, login, django_user_model):
    gone = django_user_model.objects.create_user("gone", password="x-pass-12345", is_active=False)
    client = login(cast.teamadmin)
    detail = reverse("team_detail", args=[cast.alpha.pk])
    for name in ("nobody", "gone"):
        response = client.post(detail, {"add_member": "1", "user": name, "role": "viewer"})
        assert response.status_code == 200
        assert "user" in response.context["member_form"].errors
    assert not Membership.objects.filter(user=gone).exists()
    assert not AuditEntry.objects.exists()


def test_admin_adds_changes_and_removes_a_member_each_audited(cast, login, django_user_model):
    newbie = django_user_model.objects.create_user("newbie", password="x-pass-12345")
    client = login(cast.admin)
    detail = reverse("team_detail", args=[cast.alpha.pk])

    response = client.post(detail, {"add_member": "1", "user": "newbie", "role": "viewer"})
    assert response.status_code == 302 and response.url == detail
    membership = Membership.objects.get(user=newbie, team=cast.alpha)
    assert membership.role == Role.VIEWER

    response = client.post(reverse("membership_edit", args=[membership.pk]), {"role": "operator"})
    assert response.status_code == 302 and response.url == detail
    membership.refresh_from_db()
    assert membership.role == Role.OPERATOR

    response = client.post(reverse("membership_edit", args=[membership.pk]), {"remove": "1"})
    assert response.status_code == 302
    assert not Membership.objects.filter(user=newbie, team=cast.alpha).exists()

    assert audit_actions() == [
        ("team.member_add", "newbie", "viewer"),
        ("team.member_role", "newbie", "operator"),
        ("team.member_remove", "newbie", "operator"),
    ]
    assert set(AuditEntry.objects.values_list("team_id", "username")) == {(cast.alpha.pk, "admin")}


def test_adding_an_existing_member_changes_their_role(cast, login):
    client = login(cast.admin)
    client.post(
        reverse("team_detail", args=[cast.alpha.pk]),
        {"add_member": "1", "user": "viewer", "role": "operator"},
    )
    assert Membership.objects.filter(user=cast.viewer, team=cast.alpha).count() == 1
    assert Membership.objects.get(user=cast.viewer, team=cast.alpha).role == Role.OPERATOR
    assert AuditEntry.objects.get().action == "team.member_role"


def test_unknown_role_is_refused(cast, login):
    membership = Membership.objects.get(user=cast.viewer, team=cast.alpha)
    client = login(cast.admin)
    client.post(reverse("membership_edit", args=[membership.pk]), {"role": "superuser"})
    response = client.post(
        reverse("team_detail", args=[cast.alpha.pk]),
        {"add_member": "1", "user": "outsider", "role": "root"},
    )
    assert response.status_code == 200 and "role" in response.context["member_form"].errors
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER
    assert not Membership.objects.filter(user=cast.outsider, team=cast.alpha).exists()
    assert not AuditEntry.objects.exists()


def test_admin_edits_and_deletes_a_team(cast, login):
    host = Host.objects.create(name="h", url="unix:///tmp/nope.sock")
    box = Container.objects.create(host=host, docker_id="a" * 64, name="box", team=cast.alpha)
    client = login(cast.admin)
    response = client.post(
        reverse("team_detail", args=[cast.alpha.pk]),
        {"name": "alpha", "description": "renamed"},
    )
    assert response.status_code == 302
    cast.alpha.refresh_from_db()
    assert cast.alpha.description == "renamed"

    response = client.post(reverse("team_delete", args=[cast.alpha.pk]))
    assert response.status_code == 302 and response.url == reverse("team_list")
    assert not Team.objects.filter(pk=cast.alpha.pk).exists()
    assert not Membership.objects.filter(team_id=cast.alpha.pk).exists()
    box.refresh_from_db()
    assert box.team is None  # the container stays, unowned
    assert [a for a, _, _ in audit_actions()] == ["team.update", "team.remove"]


@pytest.mark.parametrize("who", NON_ADMINS)
def test_non_admin_posts_get_403_and_change_nothing(cast, login, who):
    client = login(getattr(cast, who))
    membership = Membership.objects.get(user=cast.viewer, team=cast.alpha)
    before = list(Membership.objects.order_by("pk").values_list("user", "team", "role"))
    detail = reverse("team_detail", args=[cast.alpha.pk])
    posts = [
        (reverse("team_list"), {"name": "sneaky"}),
        (detail, {"add_member": "1", "user": who, "role": "admin"}),
        (detail, {"name": "hijacked"}),
        (reverse("membership_edit", args=[membership.pk]), {"role": "admin"}),
        (reverse("membership_edit", args=[membership.pk]), {"remove": "1"}),
        (reverse("team_delete", args=[cast.alpha.pk]), {}),
        (reverse("user_create"), {"username": "sneaky", "password": "long-enough-1"}),
    ]
    for url, data in posts:
        status = client.post(url, data).status_code
        # An outsider cannot even see team alpha: its pages, members and delete are 404.
        team_scoped = url not in (reverse("team_list"), reverse("user_create"))
        expected = 404 if who == "outsider" and team_scoped else 403
        assert status == expected, (url, data, status)
    assert list(Membership.objects.order_by("pk").values_list("user", "team", "role")) == before
    assert sorted(Team.objects.values_list("name", flat=True)) == ["alpha", "beta"]
    assert not get_user_model().objects.filter(username="sneaky").exists()
    assert not AuditEntry.objects.exists()


def test_admin_creates_a_user_who_can_log_in(cast, login, client):
    response = login(cast.admin).post(
        reverse("user_create"),
        {"username": "carol", "email": "carol@example.com", "password": "carol-pass-987"},
    )
    assert response.status_code == 302 and response.url == reverse("team_list")
    carol = get_user_model().objects.get(username="carol")
    assert carol.email == "carol@example.com"
    assert carol.check_password("carol-pass-987")
    assert not carol.is_superuser and not carol.is_staff
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_name, entry.username) == ("user.create", "carol", "admin")
    assert "carol-pass-987" not in str(entry.params)
    client.post(reverse("logout"))
    response = client.post(
        reverse("login"), {"username": "carol", "password": "carol-pass-987"}, REMOTE_ADDR="1.2.3.4"
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "data, field",
    [
        ({"username": "viewer", "password": "long-enough-1"}, "username"),
        ({"username": "dave", "password": "short"}, "password"),
        ({"username": "dave", "password": "long-enough-1", "email": "nope"}, "email"),
    ],
)
def test_bad_user_input_is_reported_and_creates_nobody(cast, login, data, field):
    users_before = get_user_model().objects.count()
    response = login(cast.admin).post(reverse("user_create"), data, follow=True)
    assert get_user_model().objects.count() == users_before
    assert any(str(m).startswith(f"{field}:") for m in response.context["messages"])
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    "who, sees, hidden",
    [
        ("viewer", "alpha", "beta"),
        ("owner", "alpha", "beta"),
        ("teamadmin", "alpha", "beta"),
        ("outsider", "beta", "alpha"),
    ],
)
def test_member_sees_only_their_teams(cast, login, who, sees, hidden):
    page = login(getattr(cast, who)).get(reverse("team_list")).content.decode()
    assert reverse("team_detail", args=[getattr(cast, sees).pk]) in page
    assert reverse("team_detail", args=[getattr(cast, hidden).pk]) not in page
    assert reverse("user_create") not in page  # no admin forms


@pytest.mark.parametrize("who", ["admin", "dashadmin"])
def test_admin_sees_every_team_and_the_admin_forms(cast, dashadmin, login, who):
    page = login(cast.users[who]).get(reverse("team_list")).content.decode()
    for team in (cast.alpha, cast.beta):
        assert reverse("team_detail", args=[team.pk]) in page
    assert reverse("user_create") in page


def test_user_in_no_team_sees_none(login, django_user_model, cast):
    loner = django_user_model.objects.create_user("loner", password="x-pass-12345")
    response = login(loner).get(reverse("team_list"))
    assert list(response.context["teams"]) == []


@pytest.mark.parametrize("who", ["viewer", "owner", "operator", "teamadmin"])
def test_team_detail_of_a_team_you_are_not_in_is_404(cast, login, who):
    client = login(getattr(cast, who))
    assert client.get(reverse("team_detail", args=[cast.beta.pk])).status_code == 404
    assert client.get(reverse("team_detail", args=[cast.alpha.pk])).status_code == 200


def test_member_reads_their_team_without_admin_controls(cast, login):
    response = login(cast.viewer).get(reverse("team_detail", args=[cast.alpha.pk]))
    page = response.content.decode()
    assert "owner" in page and "outsider" not in page
    assert reverse("team_delete", args=[cast.alpha.pk]) not in page
    membership = Membership.objects.get(user=cast.viewer, team=cast.alpha)
    assert reverse("membership_edit", args=[membership.pk]) not in page


def test_dashboard_admin_cannot_deactivate_a_superuser_or_themselves(cast, dashadmin, login):
    client = login(dashadmin)
    for target in (cast.admin, dashadmin):
        response = client.post(reverse("user_flags", args=[target.pk]), {"active": "0"})
        assert response.status_code == 403, target
        assert get_user_model().objects.get(pk=target.pk).is_active, target
    assert list(AuditEntry.objects.values_list("action", "result")) == [
        ("user.active", AuditEntry.Result.DENIED),
        ("user.active", AuditEntry.Result.DENIED),
    ]
    # An ordinary account, yes; a superuser may deactivate a superuser.
    response = client.post(reverse("user_flags", args=[cast.viewer.pk]), {"active": "0"})
    assert response.status_code == 302
    assert not get_user_model().objects.get(pk=cast.viewer.pk).is_active
    root = get_user_model().objects.create_superuser("root", password="root-pass-123")
    response = login(cast.admin).post(reverse("user_flags", args=[root.pk]), {"active": "0"})
    assert response.status_code == 302
    assert not get_user_model().objects.get(pk=root.pk).is_active


def test_services_refuse_an_actor_without_a_user_but_let_the_shell_act(cast):
    gone = Actor(None)  # a job whose user was deleted: never the system
    attempts = [
        lambda a: services.save_team(a, Team(name="ghost-team")),
        lambda a: services.set_membership(a, cast.alpha, cast.outsider, Role.ADMIN),
        lambda a: services.create_user(a, "ghost", "ghost-pass-123"),
        lambda a: services.save_host(a, Host(name="ghost-host", url="unix:///tmp/nope.sock")),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt(gone)
    assert not Team.objects.filter(name="ghost-team").exists()
    assert not Membership.objects.filter(user=cast.outsider, team=cast.alpha).exists()
    assert not get_user_model().objects.filter(username="ghost").exists()
    assert not Host.objects.filter(name="ghost-host").exists()
    assert set(AuditEntry.objects.values_list("username", "result")) == {
        ("(deleted user)", AuditEntry.Result.DENIED)
    }
    for attempt in attempts:
        attempt(Actor.system())
    assert Membership.objects.get(user=cast.outsider, team=cast.alpha).role == Role.ADMIN
    ok = AuditEntry.objects.filter(result=AuditEntry.Result.OK)
    assert set(ok.values_list("username", flat=True)) == {"system"}
