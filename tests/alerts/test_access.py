"""Who may read and change rules, silences and alerts; forged POSTs change nothing.

Cast: owner/operator/viewer/teamadmin of alpha, outsider (operator of beta), admin
(superuser), dashadmin (Profile flag).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertRule, Notification, Silence
from containers.models import Container
from dashboard.models import AuditEntry

ALL = ["owner", "operator", "viewer", "teamadmin", "outsider", "admin", "dashadmin"]
ALPHA_READERS = {"owner", "operator", "viewer", "teamadmin", "admin", "dashadmin"}
ALPHA_WRITERS = {"owner", "operator", "teamadmin", "admin", "dashadmin"}


@pytest.fixture
def world(cast, dashadmin, local_host):
    """A container of each team (mirror rows of the local engine), a rule and silence each."""
    mk = Container.objects.create
    a = mk(host=local_host, docker_id="a" * 64, name="alpha-web", state="running", team=cast.alpha)
    b = mk(host=local_host, docker_id="b" * 64, name="beta-web", state="running", team=cast.beta)
    rules = {
        team.name: AlertRule.objects.create(
            name=f"{team.name}-oom", team=team, event="oom", recipients=[f"{team.name}@x.test"]
        )
        for team in (cast.alpha, cast.beta)
    }
    rules["global"] = AlertRule.objects.create(
        name="global-died", event="died_nonzero", recipients=["root@x.test"]
    )
    end = timezone.now() + timedelta(hours=1)
    silences = {
        t.name: Silence.objects.create(team=t, comment=f"{t.name} upgrade", ends_at=end)
        for t in (cast.alpha, cast.beta)
    }
    now = timezone.now()
    alerts = {
        name: Alert.objects.create(
            rule=rules[rule],
            rule_name=rules[rule].name,
            rule_team=rules[rule].team,
            container=c,
            container_name=c.name,
            host=local_host,
            host_name="local",
            condition="OOM-killed",
            since=now,
        )  # fmt: skip
        for name, rule, c in (("alpha", "alpha", a), ("beta", "beta", b))
    }
    Notification.objects.create(alert=alerts["beta"], kind="firing", recipient="beta@x.test",
                                dedupe_key="k-beta")  # fmt: skip
    return type("World", (), {"a": a, "b": b, "rules": rules, "silences": silences,
                              "alerts": alerts, "cast": cast})  # fmt: skip


def rule_post(team, name="new-rule", **extra):
    data = {
        "name": name,
        "team": team.pk if team else "",
        "host": "",
        "container": "",
        "name_glob": "*",
        "metric": "",
        "op": ">",
        "threshold": "",
        "window": "1m",
        "event": "oom",
        "restart_count": "3",
        "restart_window": "10m",
        "for_": "0s",
        "repeat": "0s",
        "send_resolved": "on",
        "recipients": "team@example.test",
        "enabled": "on",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("who", ALL)
def test_rule_list_shows_only_rules_of_ones_teams(world, login, who):
    page = login(world.cast.users[who]).get("/monitoring/rules/").content.decode()
    shown = {name for name in ("alpha-oom", "beta-oom", "global-died") if name in page}
    expected = {
        "owner": {"alpha-oom"}, "operator": {"alpha-oom"}, "viewer": {"alpha-oom"},
        "teamadmin": {"alpha-oom"}, "outsider": {"beta-oom"},
        "admin": {"alpha-oom", "beta-oom", "global-died"},
        "dashadmin": {"alpha-oom", "beta-oom", "global-died"},
    }[who]  # fmt: skip
    assert shown == expected


@pytest.mark.parametrize("who", ALL)
def test_rule_page_and_edit(world, login, who):
    client = login(world.cast.users[who])
    rule = world.rules["alpha"]
    url = f"/monitoring/rules/{rule.pk}/"
    get = client.get(url)
    post = client.post(url, rule_post(world.cast.alpha, name="alpha-oom", recipients="new@x.test"))
    rule.refresh_from_db()
    if who not in ALPHA_READERS:
        assert (get.status_code, post.status_code) == (404, 404)
    elif who not in ALPHA_WRITERS:
        assert (get.status_code, post.status_code) == (200, 403)
    else:
        assert (get.status_code, post.status_code) == (200, 302)
        assert rule.recipients == ["new@x.test"]
        assert AuditEntry.objects.filter(action="alert_rule.update", target_name="alpha-oom")
        return
    assert rule.recipients == ["alpha@x.test"]


@pytest.mark.parametrize("action", ["disable", "delete"])
@pytest.mark.parametrize("who", ALL)
def test_rule_disable_and_delete(world, login, who, action):
    rule = world.rules["alpha"]
    r = login(world.cast.users[who]).post(f"/monitoring/rules/{rule.pk}/{action}/")
    exists = AlertRule.objects.filter(pk=rule.pk).first()
    if who not in ALPHA_READERS:
        assert r.status_code == 404 and exists.enabled
    elif who not in ALPHA_WRITERS:
        assert r.status_code == 403 and exists.enabled
    else:
        assert r.status_code == 302
        assert (exists is None) if action == "delete" else (not exists.enabled)
        assert AuditEntry.objects.filter(action=f"alert_rule.{action}", target_name="alpha-oom")


@pytest.mark.parametrize("who", ALL)
def test_create_rule_for_ones_team(world, login, who):
    r = login(world.cast.users[who]).post("/monitoring/rules/new/", rule_post(world.cast.alpha))
    made = AlertRule.objects.filter(name="new-rule").first()
    if who in ALPHA_WRITERS:
        assert r.status_code == 302 and made.team == world.cast.alpha
        assert AuditEntry.objects.filter(action="alert_rule.create", target_name="new-rule")
    elif who == "viewer":
        assert r.status_code == 403 and made is None
    else:  # outsider: alpha is not among its teams
        assert r.status_code == 400 and made is None


def test_forged_posts_change_nothing(world, login):
    cast = world.cast
    op = login(cast.operator)
    # A rule for beta's containers: beta is not a choice for alpha's operator.
    assert op.post("/monitoring/rules/new/", rule_post(cast.beta)).status_code == 400
    # A rule of alpha scoped to beta's container.
    forged = rule_post(cast.alpha, container=world.b.pk)
    assert op.post("/monitoring/rules/new/", forged).status_code == 400
    # A rule over all teams (no team).
    assert op.post("/monitoring/rules/new/", rule_post(None)).status_code == 400
    assert not AlertRule.objects.filter(name="new-rule").exists()
    # Editing beta's rule, or moving alpha's rule to beta.
    beta = world.rules["beta"]
    r = op.post(f"/monitoring/rules/{beta.pk}/", rule_post(cast.alpha, name="stolen"))
    assert r.status_code == 404
    alpha = world.rules["alpha"]
    r = op.post(f"/monitoring/rules/{alpha.pk}/", rule_post(cast.beta, name="alpha-oom"))
    assert r.status_code == 400
    assert AlertRule.objects.get(pk=alpha.pk).team == cast.alpha
    assert AlertRule.objects.get(pk=beta.pk).name == "beta-oom"
    # Silencing beta, expiring beta's silence, silencing beta's rule under alpha's name.
    end = {"duration": "1h", "comment": "x", "container_glob": "*"}
    assert op.post("/monitoring/silences/new/", {**end, "team": cast.beta.pk}).status_code == 400
    forged = {**end, "team": cast.alpha.pk, "rule": beta.pk}
    assert op.post("/monitoring/silences/new/", forged).status_code == 400
    silence = world.silences["beta"]
    assert op.post(f"/monitoring/silences/{silence.pk}/expire/").status_code == 404
    assert Silence.objects.get(pk=silence.pk).is_active
    assert Silence.objects.count() == 2
    # Junk ids and values: a clear 400 or 404, never a 500.
    assert (
        op.post("/monitoring/rules/new/", {**rule_post(cast.alpha), "team": "x"}).status_code == 400
    )
    assert op.post("/monitoring/rules/99999999/delete/").status_code == 404
    r = op.post("/monitoring/rules/new/", rule_post(cast.alpha, recipients="a@b.c, nope"))
    assert r.status_code == 400 and b"not an email address" in r.content
    r = op.post("/monitoring/rules/new/", rule_post(cast.alpha, window="soon", metric="pids",
                                                    event="", threshold="1"))  # fmt: skip
    assert r.status_code == 400
    assert not AlertRule.objects.filter(name="new-rule").exists()


def test_only_dashboard_admins_make_rules_over_all_teams(world, login):
    r = login(world.cast.dashadmin).post("/monitoring/rules/new/", rule_post(None, name="everyone"))
    assert r.status_code == 302
    assert AlertRule.objects.get(name="everyone").team is None


@pytest.mark.parametrize("who", ALL)
def test_silences_create_and_expire(world, login, who):
    client = login(world.cast.users[who])
    page = client.get("/monitoring/silences/").content.decode()
    assert ("alpha upgrade" in page) == (who in ALPHA_READERS)
    data = {"team": world.cast.alpha.pk, "duration": "30m", "comment": "maintenance",
            "container_glob": "alpha-*"}  # fmt: skip
    r = client.post("/monitoring/silences/new/", data)
    made = Silence.objects.filter(comment="maintenance").first()
    silence = world.silences["alpha"]
    expire = client.post(f"/monitoring/silences/{silence.pk}/expire/")
    silence.refresh_from_db()
    if who in ALPHA_WRITERS:
        assert r.status_code == 302 and made.team == world.cast.alpha
        assert expire.status_code == 302 and not silence.is_active
        assert AuditEntry.objects.filter(action="silence.create").exists()
        assert AuditEntry.objects.filter(action="silence.expire").exists()
    else:
        assert made is None and silence.is_active
        assert r.status_code == (403 if who == "viewer" else 400)
        assert expire.status_code == (403 if who == "viewer" else 404)


@pytest.mark.parametrize("who", ALL)
def test_alerts_show_only_what_one_may_see(world, login, who):
    client = login(world.cast.users[who])
    for path in ("/monitoring/", "/monitoring/alerts/", "/monitoring/alerts/?state=firing"):
        page = client.get(path).content.decode()
        assert ("alpha-web" in page) == (who in ALPHA_READERS), path
        assert ("beta-web" in page) == (who in {"outsider", "admin", "dashadmin"}), path
        # The email's delivery state to those who see the alert; its address to readers
        # of the rule only.
        if path == "/monitoring/alerts/":
            assert ("beta@x.test" in page) == (who in {"outsider", "admin", "dashadmin"})


def test_anonymous_is_sent_to_login(world, client):
    for path in (
        "/monitoring/",
        "/monitoring/rules/",
        "/monitoring/alerts/",
        "/monitoring/silences/",
    ):
        r = client.get(path)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"]
