"""Who may do what with a registry granted to team alpha: every view and action, for
the owner (operator), each role of alpha, an outsider (operator of beta) and both
kinds of dashboard admin. Hidden → 404; visible but not allowed → 403."""

import pytest
from django.urls import reverse

from dashboard.models import Job
from registries.models import Registry
from tests.registries.conftest import namespace

ALPHA = ["owner", "operator", "viewer", "teamadmin"]
ADMINS = ["admin", "dashadmin"]
EVERYONE = [*ALPHA, "outsider", *ADMINS]


def expect(alpha, outsider=404, admins=200, **per_role):
    table = {who: alpha for who in ALPHA}
    table.update(outsider=outsider, admin=admins, dashadmin=admins, **per_role)
    return table


READS = expect(200)
USE = expect(200, viewer=403)
MANAGE = expect(403)
DELETE_TAG = expect(403, teamadmin=302, admins=302)


@pytest.fixture
def users(cast, dashadmin):
    return cast.users


@pytest.mark.parametrize("who", EVERYONE)
def test_list_shows_only_registries_granted_to_ones_teams(who, users, login, registry):
    hidden = Registry.objects.create(name="beta-only-registry", url="https://b.example.com")
    hidden.teams.add(users["outsider"].memberships.get().team)
    page = login(users[who]).get(reverse("registries:list")).content.decode()
    assert ("test-registry" in page) == (who != "outsider")
    assert ("beta-only-registry" in page) == (who in ("outsider", *ADMINS))
    assert ("Add registry" in page) == (who in ADMINS)


@pytest.mark.parametrize("who", EVERYONE)
def test_detail_and_browsing(who, users, login, registry, pushed):
    client = login(users[who])
    ns = namespace()
    for url in (
        reverse("registries:detail", args=[registry.pk]),
        reverse("registries:repositories", args=[registry.pk]),
        reverse("registries:tags", args=[registry.pk, f"{ns}/app"]),
    ):
        assert client.get(url).status_code == READS[who], (url, who)


@pytest.mark.parametrize("who", EVERYONE)
def test_test_login(who, users, login, registry):
    response = login(users[who]).post(
        reverse("registries:test", args=[registry.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == USE[who]
    if response.status_code == 200:
        assert "Login OK" in response.content.decode()


@pytest.mark.parametrize("who", EVERYONE)
def test_create_edit_and_delete_are_for_dashboard_admins(who, users, login, registry):
    client = login(users[who])
    new = client.get(reverse("registries:new"))
    assert new.status_code == (200 if who in ADMINS else 403)
    edit = client.get(reverse("registries:edit", args=[registry.pk]))
    assert edit.status_code == MANAGE[who]
    posted = client.post(
        reverse("registries:edit", args=[registry.pk]),
        {"name": "renamed", "url": registry.url, "username": "x", "teams": []},
    )
    assert posted.status_code == (302 if who in ADMINS else MANAGE[who])
    deleted = client.post(reverse("registries:delete", args=[registry.pk]))
    assert deleted.status_code == (302 if who in ADMINS else MANAGE[who])
    assert Registry.objects.filter(pk=registry.pk).exists() == (who not in ADMINS)
    if who not in ADMINS:
        assert Registry.objects.get(pk=registry.pk).name == "test-registry"


@pytest.mark.parametrize("who", EVERYONE)
def test_delete_tag_is_for_team_admins_of_a_granted_team(
    who, users, login, registry, pushed, no_task_queue
):
    ns = namespace()
    response = login(users[who]).post(
        reverse("registries:delete_tag", args=[registry.pk]),
        {"repository": f"{ns}/app", "tag": "v2", "digest": pushed[f"{ns}/app:v2"]},
    )
    assert response.status_code == DELETE_TAG[who]
    jobs = Job.objects.filter(kind="registry.delete_tag")
    assert jobs.exists() == (response.status_code == 302)
    if jobs.exists():
        job = jobs.get()
        assert response["Location"] == reverse("job", args=[job.pk])
        assert job.params == {
            "action": "delete tag",
            "registry": registry.pk,
            "repository": f"{ns}/app",
            "tag": "v2",
            "digest": pushed[f"{ns}/app:v2"],
        }


def test_delete_tag_buttons_only_for_those_who_may(users, login, registry, pushed):
    url = reverse("registries:tags", args=[registry.pk, f"{namespace()}/app"])
    assert "delete-tag" not in login(users["operator"]).get(url).content.decode()
    assert "delete-tag" in login(users["teamadmin"]).get(url).content.decode()


def test_all_teams_registry_is_usable_by_every_teams_operator(users, login, registry):
    Registry.objects.filter(pk=registry.pk).update(all_teams=True)
    registry.teams.clear()
    client = login(users["outsider"])
    assert client.get(reverse("registries:detail", args=[registry.pk])).status_code == 200
    test = client.post(reverse("registries:test", args=[registry.pk]), HTTP_HX_REQUEST="true")
    assert test.status_code == 200
    viewer = login(users["viewer"])
    assert viewer.post(reverse("registries:test", args=[registry.pk])).status_code == 403


def test_registry_granted_to_no_team_is_for_admins_only(users, login, registry):
    registry.teams.clear()
    for who in ALPHA:
        url = reverse("registries:detail", args=[registry.pk])
        assert login(users[who]).get(url).status_code == 404
    assert login(users["dashadmin"]).get(url).status_code == 200
