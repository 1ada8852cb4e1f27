"""Audit log: append-only in the ORM, kept when what it names goes; the page, filters, scope."""

import pytest
from django.db import transaction
from django.urls import reverse

from containers.models import Container
from dashboard.audit import Actor, record
from dashboard.models import AuditEntry, Host, Team

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def entry(cast):
    host = Host.objects.create(name="h1", url="unix:///tmp/nope.sock")
    return record(
        Actor(cast.owner, "10.1.2.3"),
        "container.stop",
        host=host,
        team=cast.alpha,
        target="web-1",
        target_type="container",
        params={"timeout": 10},
        message="stopped",
    )


def snapshot(entry):
    return AuditEntry.objects.filter(pk=entry.pk).values().get()


# ---------------------------------------------------------------- append-only


def test_record_keeps_who_where_what_and_result(entry, cast):
    row = snapshot(entry)
    assert row["user_id"] == cast.owner.pk and row["username"] == "owner"
    assert row["source_ip"] == "10.1.2.3"
    assert (row["host_name"], row["team_id"]) == ("h1", cast.alpha.pk)
    assert (row["action"], row["target_name"], row["target_type"]) == (
        "container.stop",
        "web-1",
        "container",
    )
    assert (row["params"], row["result"], row["message"]) == ({"timeout": 10}, "ok", "stopped")


def test_system_actor_is_recorded_as_system():
    e = record(Actor.system(), "host.create", target="x")
    assert (e.user_id, e.username, e.source_ip) == (None, "system", None)


def test_actor_without_a_user_is_recorded_as_a_deleted_user_not_as_system():
    # Actor(None) is a job whose user is gone: it must never pass for the server's shell.
    e = record(Actor(None), "container.stop", target="x")
    assert (e.user_id, e.username, e.source_ip) == (None, "(deleted user)", None)


@pytest.mark.parametrize(
    "attempt",
    [
        "save",
        "save_update_fields",
        "delete",
        "queryset_update",
        "queryset_delete",
        "all_delete",
        "bulk_update",
        "update_or_create",
    ],
)
def test_entries_cannot_be_changed_or_deleted_through_the_orm(entry, attempt):
    before = snapshot(entry)
    entry.message = "rewritten"
    attempts = {
        "save": lambda: entry.save(),
        "save_update_fields": lambda: entry.save(update_fields=["message"]),
        "delete": lambda: entry.delete(),
        "queryset_update": lambda: AuditEntry.objects.filter(pk=entry.pk).update(message="x"),
        "queryset_delete": lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        "all_delete": lambda: AuditEntry.objects.all().delete(),
        "bulk_update": lambda: AuditEntry.objects.bulk_update([entry], ["message"]),
        "update_or_create": lambda: AuditEntry.objects.update_or_create(
            pk=entry.pk, defaults={"message": "x"}
        ),
    }
    # A savepoint, so the test can read the row again after the refused write.
    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        attempts[attempt]()
    assert snapshot(entry) == before


@pytest.mark.parametrize("what", ["user", "host", "team"])
def test_deleting_what_an_entry_names_keeps_the_entry_unchanged(entry, cast, what):
    before = snapshot(entry)
    target = {"user": cast.owner, "host": entry.host, "team": cast.alpha}[what]
    target.delete()
    after = snapshot(entry)
    assert after == before
    assert (after["username"], after["host_name"]) == ("owner", "h1")


# ---------------------------------------------------------------- the page


@pytest.fixture
def log(cast):
    """A small history across two teams, two hosts and the system."""
    h1 = Host.objects.create(name="h1", url="unix:///tmp/nope.sock", all_teams=True)
    h2 = Host.objects.create(name="h2", url="unix:///tmp/nope2.sock")
    h2.teams.add(cast.alpha)
    owner, outsider, admin = (
        Actor(u, "127.0.0.1") for u in (cast.owner, cast.outsider, cast.admin)
    )
    entries = {
        "start": record(owner, "container.start", host=h1, team=cast.alpha, target="web-1"),
        "stop": record(
            owner,
            "container.stop",
            host=h2,
            team=cast.alpha,
            target="db-1",
            result=AuditEntry.Result.FAILED,
            message="engine said no",
        ),
        "beta": record(outsider, "container.remove", host=h1, team=cast.beta, target="cache-9"),
        "admin": record(admin, "host.create", host=h2, target=h2),
    }
    return type("Log", (), {"h1": h1, "h2": h2, **entries})


def shown(client, **query):
    response = client.get(reverse("audit"), query)
    assert response.status_code == 200
    return {e.pk for e in response.context["page"].object_list}


def test_admin_sees_every_entry(cast, login, log):
    assert shown(login(cast.admin)) == {log.start.pk, log.stop.pk, log.beta.pk, log.admin.pk}


@pytest.mark.parametrize("who", ["owner", "viewer", "operator"])
def test_member_sees_only_their_teams_entries(cast, login, log, who):
    assert shown(login(getattr(cast, who))) == {log.start.pk, log.stop.pk}


def test_outsider_sees_only_their_own_team(cast, login, log):
    assert shown(login(cast.outsider)) == {log.beta.pk}


def test_user_in_no_team_sees_nothing(login, log, django_user_model):
    loner = django_user_model.objects.create_user("loner", password="x-pass-12345")
    assert shown(login(loner)) == set()


def test_removed_member_loses_sight_of_the_team_log(cast, login, log):
    cast.viewer.memberships.all().delete()
    assert shown(login(cast.viewer)) == set()


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"user": "OWNER"}, {"start", "stop"}),
        ({"user": "outsider"}, {"beta"}),
        ({"action": "container."}, {"start", "stop", "beta"}),
        ({"action": "stop"}, {"stop"}),
        ({"result": "failed"}, {"stop"}),
        ({"result": "ok"}, {"start", "beta", "admin"}),
        ({"q": "web"}, {"start"}),
        ({"q": "said no"}, {"stop"}),
        ({"user": "owner", "result": "ok"}, {"start"}),
        ({"q": "nothing-matches"}, set()),
    ],
)
def test_audit_filters(cast, login, log, query, expected):
    assert shown(login(cast.admin), **query) == {getattr(log, k).pk for k in expected}


def test_audit_filter_by_host(cast, login, log):
    client = login(cast.admin)
    assert shown(client, host=log.h1.pk) == {log.start.pk, log.beta.pk}
    assert shown(client, host=log.h2.pk) == {log.stop.pk, log.admin.pk}


def test_audit_search_matches_a_docker_id_prefix(cast, login, log):
    box = Container.objects.create(
        host=log.h1, docker_id="c0ffee" + "0" * 58, name="boxy", team=cast.alpha
    )
    e = record(Actor(cast.owner, "127.0.0.1"), "container.kill", target=box)
    assert e.target_id == box.docker_id
    assert shown(login(cast.admin), q="c0ffee000000") == {e.pk}


def test_filters_do_not_widen_a_members_view(cast, login, log):
    client = login(cast.owner)
    assert shown(client, user="outsider") == set()
    assert shown(client, host=log.h1.pk) == {log.start.pk}


def test_a_member_cannot_filter_by_a_host_not_granted_to_their_team(cast, login, log):
    # h2 is granted to alpha only: beta's member gets a form error, and still only beta's.
    client = login(cast.outsider)
    response = client.get(reverse("audit"), {"host": log.h2.pk})
    assert response.status_code == 200
    assert "host" in response.context["form"].errors
    assert {e.pk for e in response.context["page"].object_list} <= {log.beta.pk}
    assert "db-1" not in response.content.decode()


def test_invalid_result_filter_shows_the_error_not_everything_else(cast, login, log):
    response = login(cast.admin).get(reverse("audit"), {"result": "bogus"})
    assert response.status_code == 200
    assert "result" in response.context["form"].errors


def test_page_shows_who_from_where_host_target_and_result(cast, login, log):
    page = login(cast.owner).get(reverse("audit")).content.decode()
    for text in ("owner", "127.0.0.1", "h2", "container.stop", "db-1", "engine said no", "Failed"):
        assert text in page


def test_htmx_request_gets_only_the_table(cast, login, log):
    response = login(cast.admin).get(reverse("audit"), {"q": "web"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-table">')
    assert "<html" not in body and "web-1" in body


def test_html_in_audit_entries_is_escaped(cast, login):
    record(
        Actor(cast.owner, "127.0.0.1"),
        "container.create",
        team=cast.alpha,
        target="<script>alert('name')</script>",
        params={"image": "<img src=x onerror=alert(1)>"},
        result=AuditEntry.Result.FAILED,
        message="<b onmouseover=alert(2)>bad</b>",
    )
    client = login(cast.owner)
    for url in (reverse("audit"), reverse("home")):
        page = client.get(url).content.decode()
        assert "<script>alert(" not in page
        assert "<b onmouseover" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page
    assert "&lt;b onmouseover=alert(2)&gt;" in client.get(reverse("audit")).content.decode()


def test_entries_of_a_deleted_team_stay_visible_to_admins(cast, login, log):
    Team.objects.filter(pk=cast.alpha.pk).delete()
    assert {log.start.pk, log.stop.pk} <= shown(login(cast.admin))
