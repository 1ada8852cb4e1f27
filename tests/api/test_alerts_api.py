"""Alert rules, silences, alerts and a container's stats through the API: the
monitoring pages' access matrix replayed, the rule form's validation, the audit
entries "via API token", and the stats series the page draws."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertRule, Silence
from dashboard.models import AuditEntry
from monitoring.models import Sample
from tests.alerts.test_access import ALL, ALPHA_READERS, ALPHA_WRITERS, world  # noqa: F401

pytestmark = pytest.mark.django_db


def rule_body(team="alpha", name="api-rule", **extra):
    return {"name": name, "team": team, "event": "oom", "recipients": ["ops@x.test"], **extra}


def test_reads_show_only_what_the_pages_show(world, api):  # noqa: F811
    cast = world.cast
    for who in ALL:
        client = api(cast.users[who])
        rules = {r["name"] for r in client.get("/api/v1/alert-rules/").json()["results"]}
        silences = {s["comment"] for s in client.get("/api/v1/silences/").json()["results"]}
        alerts = {a["container_name"] for a in client.get("/api/v1/alerts/").json()["results"]}
        alpha_rule = client.get(f"/api/v1/alert-rules/{world.rules['alpha'].pk}/")
        if who in ("admin", "dashadmin"):
            assert rules == {"alpha-oom", "beta-oom", "global-died"}
            assert alerts == {"alpha-web", "beta-web"}
        elif who == "outsider":
            assert (rules, silences, alerts) == ({"beta-oom"}, {"beta upgrade"}, {"beta-web"})
        else:
            assert (rules, silences, alerts) == ({"alpha-oom"}, {"alpha upgrade"}, {"alpha-web"})
        assert alpha_rule.status_code == (200 if who in ALPHA_READERS else 404), who
    # States: firing and past; junk is ignored.
    client = api(cast.owner)
    assert client.get("/api/v1/alerts/", state="firing").json()["count"] == 1
    assert client.get("/api/v1/alerts/", state="resolved").json()["count"] == 0
    assert client.get("/api/v1/alerts/", state="<junk>").json()["count"] == 1
    # A team token of the admin sees that team's rules only.
    beta_only = api(cast.admin, team=cast.beta)
    names = {r["name"] for r in beta_only.get("/api/v1/alert-rules/").json()["results"]}
    assert names == {"beta-oom"}


def test_rule_writes_follow_the_matrix_and_are_audited_via_the_token(world, api):  # noqa: F811
    cast = world.cast
    rule = world.rules["alpha"]
    for who in ALL:
        client = api(cast.users[who], name=f"ci-{who}")
        created = client.post("/api/v1/alert-rules/", rule_body(name=f"api-{who}"))
        patched = client.client.patch(
            f"/api/v1/alert-rules/{rule.pk}/",
            {"repeat": "1h"},
            content_type="application/json",
            headers=client.headers,
        )
        disabled = client.post(f"/api/v1/alert-rules/{rule.pk}/disable/")
        enabled = client.post(f"/api/v1/alert-rules/{rule.pk}/enable/")
        statuses = [r.status_code for r in (created, patched, disabled, enabled)]
        if who in ALPHA_WRITERS:
            assert statuses == [201, 200, 200, 200], who
            assert created.json()["recipients"] == ["ops@x.test"]
        elif who == "outsider":
            assert statuses == [400, 404, 404, 404], who  # alpha is not a team of theirs
        else:
            assert statuses == [403, 403, 403, 403], who
    rule.refresh_from_db()
    # Only the fields sent change; the rest keep their values.
    assert (rule.repeat_seconds, rule.event, rule.recipients) == (3600, "oom", ["alpha@x.test"])
    assert rule.enabled
    created = set(AlertRule.objects.filter(name__startswith="api-").values_list("name", flat=True))
    assert created == {f"api-{w}" for w in ALPHA_WRITERS}
    entry = AuditEntry.objects.filter(action="alert_rule.create").latest("pk")
    assert entry.api_token_name.startswith("ci-")
    # Read-only tokens: every write refused, nothing changed.
    read_only = api(cast.owner, read_only=True)
    assert read_only.post("/api/v1/alert-rules/", rule_body(name="ro")).status_code == 403
    assert read_only.post(f"/api/v1/alert-rules/{rule.pk}/disable/").status_code == 403
    assert read_only.delete(f"/api/v1/alert-rules/{rule.pk}/").status_code == 403
    rule.refresh_from_db()
    assert rule.enabled and not AlertRule.objects.filter(name="ro").exists()
    # Delete: viewers refused, operators allowed.
    assert api(cast.viewer).delete(f"/api/v1/alert-rules/{rule.pk}/").status_code == 403
    assert api(cast.operator).delete(f"/api/v1/alert-rules/{rule.pk}/").status_code == 204
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_bad_rule_and_silence_input_is_a_400_sentence_and_changes_nothing(world, api):  # noqa: F811
    client = api(world.cast.operator)
    before = (AlertRule.objects.count(), Silence.objects.count(), AuditEntry.objects.count())
    for url, body in [
        ("/api/v1/alert-rules/", rule_body(recipients=["not an address"])),
        ("/api/v1/alert-rules/", rule_body(window="forever")),
        ("/api/v1/alert-rules/", rule_body(event="", metric="")),
        ("/api/v1/alert-rules/", rule_body(sneaky=True)),
        ("/api/v1/silences/", {"team": "alpha", "duration": "2h"}),
        ("/api/v1/silences/", {"team": "alpha", "comment": "x", "duration": "-1h"}),
    ]:
        response = client.post(url, body)
        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert error.endswith(".") and "\n" not in error, error
    after = (AlertRule.objects.count(), Silence.objects.count(), AuditEntry.objects.count())
    assert after == before


def test_silences_create_and_expire_follow_the_matrix(world, api):  # noqa: F811
    cast = world.cast
    alpha = world.silences["alpha"]
    for who in ALL:
        client = api(cast.users[who])
        created = client.post(
            "/api/v1/silences/", {"team": "alpha", "duration": "30m", "comment": f"by {who}"}
        )
        expected = 201 if who in ALPHA_WRITERS else 403 if who == "viewer" else 400
        assert created.status_code == expected, (who, created.content)
    assert api(cast.viewer).post(f"/api/v1/silences/{alpha.pk}/expire/").status_code == 403
    assert api(cast.outsider).post(f"/api/v1/silences/{alpha.pk}/expire/").status_code == 404
    expired = api(cast.operator).post(f"/api/v1/silences/{alpha.pk}/expire/")
    assert expired.status_code == 200 and expired.json()["active"] is False
    active = api(cast.owner).get("/api/v1/silences/", active="true").json()["results"]
    assert alpha.pk not in [s["id"] for s in active] and len(active) == len(ALPHA_WRITERS)
    assert AuditEntry.objects.filter(action="silence.expire").get().api_token_name == "t"


def test_container_stats_series(world, api):  # noqa: F811
    cast = world.cast
    now = timezone.now()
    for minutes, cpu in ((30, 12.5), (10, 50.0)):
        Sample.objects.create(
            container=world.a, host=world.a.host, at=now - timedelta(minutes=minutes),
            cpu_percent=cpu, mem_bytes=1000,
        )  # fmt: skip
    for who in ALL:
        response = api(cast.users[who]).get(f"/api/v1/containers/{world.a.pk}/stats/", range="1h")
        assert response.status_code == (200 if who in ALPHA_READERS else 404), who
        if response.status_code == 200:
            assert response.json()["cpu_percent"] == [12.5, 50.0]
            assert len(response.json()["t"]) == 2
    client = api(cast.viewer)
    assert client.get(f"/api/v1/containers/{world.a.pk}/stats/", range="30d").status_code == 200
    bad = client.get(f"/api/v1/containers/{world.a.pk}/stats/", range="1y")
    assert bad.status_code == 400
    assert bad.json()["error"] == "Invalid request: range: range must be one of 1h, 24h, 7d, 30d."
    team_token = api(cast.admin, team=cast.beta)
    assert team_token.get(f"/api/v1/containers/{world.a.pk}/stats/").status_code == 404
