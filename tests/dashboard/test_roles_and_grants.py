"""Breach 8: an admin role in any team made a user admin of everything.

Dashboard admins (a flag) own hosts, users and teams; a team admin manages their
own team's members and nothing else; members see and use only the hosts granted
to their team.
"""

import pytest
from django.core.management import call_command
from django.urls import reverse

from containers.models import Container
from dashboard.models import AuditEntry, Host, Membership, Profile, Role, Team
from tests.conftest import PASSWORD
from tests.support.helpers import create_form_data, unique


@pytest.fixture
def private_host(db):
    """A second registration of the local engine, granted to team beta only."""
    host = Host.objects.create(name="beta-only", url="unix:///var/run/docker.sock")
    return host


@pytest.mark.parametrize("who", ["teamadmin", "operator", "viewer"])
def test_team_roles_give_no_power_over_hosts_users_or_other_teams(cast, login, who):
    client = login(getattr(cast, who))

    assert client.get(reverse("host_new")).status_code == 403
    assert (
        client.post(reverse("user_create"), {"username": "x", "password": PASSWORD * 2}).status_code
        == 403
    )
    assert client.get(reverse("team_detail", args=[cast.beta.pk])).status_code == 404
    assert client.post(reverse("team_delete", args=[cast.alpha.pk])).status_code in (403, 404)
    assert Team.objects.filter(pk=cast.alpha.pk).exists()


def test_team_admin_manages_their_own_team_members(cast, login):
    client = login(cast.teamadmin)

    added = client.post(
        reverse("team_detail", args=[cast.alpha.pk]),
        {"add_member": "1", "user": "outsider", "role": Role.VIEWER},
    )

    assert added.status_code == 302
    assert Membership.objects.get(user=cast.outsider, team=cast.alpha).role == Role.VIEWER
    entry = AuditEntry.objects.get(action="team.member_add")
    assert (entry.username, entry.team) == ("teamadmin", cast.alpha)
    # …but cannot touch beta's memberships.
    beta_member = Membership.objects.get(user=cast.outsider, team=cast.beta)
    refused = client.post(reverse("membership_edit", args=[beta_member.pk]), {"remove": "1"})
    assert refused.status_code == 404
    assert Membership.objects.filter(pk=beta_member.pk).exists()


def test_operator_cannot_manage_members(cast, login):
    response = login(cast.operator).post(
        reverse("team_detail", args=[cast.alpha.pk]),
        {"add_member": "1", "user": "outsider", "role": Role.ADMIN},
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=cast.outsider, team=cast.alpha).exists()


def test_dashboard_admin_flag_grants_global_power_and_shows(cast, login, dashadmin):
    client = login(dashadmin)
    assert client.get(reverse("host_new")).status_code == 200
    assert client.get(reverse("team_detail", args=[cast.beta.pk])).status_code == 200
    page = login(cast.admin).get(reverse("team_list")).content.decode()
    assert "dashboard admin" in page


def test_admin_toggles_the_flag_and_it_is_audited(cast, login):
    response = login(cast.admin).post(
        reverse("user_flags", args=[cast.viewer.pk]), {"dashboard_admin": "1"}
    )
    assert response.status_code == 302
    assert Profile.objects.get(user=cast.viewer).dashboard_admin
    assert AuditEntry.objects.get(action="user.dashboard_admin").params == {"dashboard_admin": True}
    refused = login(cast.teamadmin).post(
        reverse("user_flags", args=[cast.teamadmin.pk]), {"dashboard_admin": "1"}
    )
    assert refused.status_code == 403
    assert not Profile.objects.filter(user=cast.teamadmin, dashboard_admin=True).exists()


@pytest.mark.live
def test_host_not_granted_is_invisible_with_its_containers(
    cast, login, private_host, make_container
):
    private_host.teams.add(cast.beta)
    c = make_container(owner=cast.owner, team=cast.alpha, host=private_host)

    alpha = login(cast.owner)
    assert alpha.get(reverse("host_detail", args=[private_host.pk])).status_code == 404
    assert alpha.get(reverse("containers:detail", args=[c.pk])).status_code == 404
    assert b"beta-only" not in alpha.get(reverse("host_list")).content
    # Creating there for alpha is refused even by hand.
    refused = alpha.post(
        reverse("containers:new"), create_form_data(private_host, cast.alpha, unique("g"))
    )
    assert refused.status_code == 422
    assert (
        login(cast.outsider).get(reverse("host_detail", args=[private_host.pk])).status_code == 200
    )


@pytest.mark.live
def test_host_list_counts_only_what_the_user_sees(cast, login, local_host, make_container):
    make_container(owner=cast.owner, team=cast.alpha)
    make_container(owner=cast.outsider, team=cast.beta)
    make_container()  # unowned

    hosts = login(cast.viewer).get(reverse("host_list")).context["hosts"]

    assert [h.n_containers for h in hosts if h.pk == local_host.pk] == [1]


@pytest.mark.live
def test_a_name_clash_with_an_invisible_container_is_neutral(
    cast, login, local_host, make_container, engine_cleanup
):
    hidden = make_container(owner=cast.outsider, team=cast.beta, name=unique("taken"))

    response = login(cast.operator).post(
        reverse("containers:new"), create_form_data(local_host, cast.alpha, hidden.name)
    )

    errors = " ".join(response.context["form"].errors["name"])
    assert response.status_code == 422
    assert errors == f"The name '{hidden.name}' cannot be used on local; choose another."


def test_add_host_grants_teams_and_add_user_makes_dashboard_admins(cast, capsys):
    call_command("add_host", "granted", "unix:///nonexistent.sock", "--team", "alpha")
    call_command("add_host", "open", "unix:///nonexistent2.sock", "--all-teams")
    call_command("add_user", "boss", "--password", PASSWORD, "--admin")

    assert list(Host.objects.get(name="granted").teams.all()) == [cast.alpha]
    assert Host.objects.get(name="open").all_teams
    assert Profile.objects.get(user__username="boss").dashboard_admin
    assert AuditEntry.objects.filter(action="host.create", username="system").count() == 2


def test_first_run_admin_is_offered_a_team_on_the_create_form(db, login, local_host):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = login(admin)

    page = client.get(reverse("containers:new"))
    assert page.status_code == 200
    assert "First, a team" in page.content.decode()
    assert not Team.objects.exists()  # a GET changes nothing

    made = client.post(reverse("containers:new"), {"first_team": "default"})
    assert made.status_code == 302 and made.url == reverse("containers:new")
    assert Team.objects.filter(name="default").exists()
    form = client.get(reverse("containers:new"))
    assert form.context["form"].fields["team"].queryset.get().name == "default"
    assert not Container.objects.exists()
