"""Registries through the API: the registry pages' access matrix replayed, browsing
the real test registry, and never its password in any answer."""

import pytest

from dashboard.models import Job
from registries.models import Registry
from tests.registries.conftest import namespace, pushed, registry  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live]

ALPHA = ["owner", "operator", "viewer", "teamadmin"]
EVERYONE = [*ALPHA, "outsider", "admin", "dashadmin"]


def expect(alpha, outsider=404, admins=200, **per_role):
    table = {who: alpha for who in ALPHA}
    table.update(outsider=outsider, admin=admins, dashadmin=admins, **per_role)
    return table


@pytest.fixture
def users(cast, dashadmin, no_task_queue):
    return cast.users


def test_reads_follow_the_matrix_and_never_show_the_password(
    users,
    api,
    registry,  # noqa: F811
    registry_server,
    pushed,  # noqa: F811
):
    hidden = Registry.objects.create(name="beta-only-registry", url="https://b.example.com")
    hidden.teams.add(users["outsider"].memberships.get().team)
    ns = namespace()
    for who in EVERYONE:
        client = api(users[who])
        listed = {r["name"] for r in client.get("/api/v1/registries/").json()["results"]}
        assert ("test-registry" in listed) == (who != "outsider"), who
        assert ("beta-only-registry" in listed) == (who in ("outsider", "admin", "dashadmin"))
        answers = [
            client.get(f"/api/v1/registries/{registry.pk}/"),
            client.get(f"/api/v1/registries/{registry.pk}/repositories/"),
            client.get(f"/api/v1/registries/{registry.pk}/tags/", repository=f"{ns}/app"),
        ]
        assert [a.status_code for a in answers] == [expect(200)[who]] * 3, who
        for answer in answers:
            assert registry_server.password not in answer.content.decode(), who
        if who == "outsider":
            continue
        assert answers[0].json()["has_password"] is True
        assert f"{ns}/app" in answers[1].json()["items"]
        tags = {t["tag"]: t for t in answers[2].json()["tags"]}
        assert set(tags) == {"v1", "v2", "latest"}
        assert tags["v1"]["digest"] == pushed[f"{ns}/app:v1"]
    # Paging the registry's way, and junk ignored or refused in one sentence.
    client = api(users["viewer"])
    first = client.get(f"/api/v1/registries/{registry.pk}/tags/", repository=f"{ns}/app", n=1)
    assert len(first.json()["tags"]) == 1 and first.json()["next_last"]
    junk = client.get(f"/api/v1/registries/{registry.pk}/tags/", repository="../NOT a repo")
    assert junk.status_code == 400 and junk.json()["error"].endswith(".")
    ok = client.get(f"/api/v1/registries/{registry.pk}/repositories/", n="x", last="%%")
    assert ok.status_code == 200
    # A token restricted to beta does not see alpha's registry, even for an admin.
    beta_only = api(users["admin"], team=users["outsider"].memberships.get().team)
    assert beta_only.get(f"/api/v1/registries/{registry.pk}/").status_code == 404


def test_test_login_and_delete_tag_follow_the_matrix(users, api, registry):  # noqa: F811
    digest = "sha256:" + "0" * 64
    body = {"repository": f"{namespace()}/app", "tag": "v1", "digest": digest}
    login, delete = {}, {}
    for who in EVERYONE:
        client = api(users[who])
        response = client.post(f"/api/v1/registries/{registry.pk}/test-login/")
        login[who] = response.status_code
        if response.status_code == 200:
            assert response.json() == {"ok": True, "message": response.json()["message"]}
        delete[who] = client.post(f"/api/v1/registries/{registry.pk}/delete-tag/", body).status_code
    assert login == expect(200, viewer=403)
    assert delete == expect(403, teamadmin=202, admins=202)
    assert Job.objects.filter(kind="registry.delete_tag").count() == 3
    # Read-only tokens are refused both; bad input is a 400 that queues nothing.
    read_only = api(users["admin"], read_only=True)
    assert read_only.post(f"/api/v1/registries/{registry.pk}/test-login/").status_code == 403
    url = f"/api/v1/registries/{registry.pk}/delete-tag/"
    assert read_only.post(url, body).status_code == 403
    bad = api(users["teamadmin"]).post(url, {**body, "digest": "md5:nope"})
    assert bad.status_code == 400 and bad.json()["error"].endswith(".")
    assert Job.objects.filter(kind="registry.delete_tag").count() == 3
    # The jobs remember their token: the worker narrows the user by it again.
    assert not Job.objects.filter(kind="registry.delete_tag", api_token=None).exists()
