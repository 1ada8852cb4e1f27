"""Management commands for scripted setup: ensure_admin, add_host, add_user."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from dashboard import access
from dashboard.models import AuditEntry, Host, Membership, Role, Team

pytestmark = [pytest.mark.django_db]


def run(*args, **options):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def user(name):
    return get_user_model().objects.get(username=name)


# ---------------------------------------------------------------- ensure_admin


def test_ensure_admin_generates_a_password_printed_once(monkeypatch):
    monkeypatch.delenv("DASHBOARD_ADMIN_PASSWORD", raising=False)
    out = run("ensure_admin")
    match = re.search(r"Created admin 'admin' with password: (\S+)", out)
    assert match, out
    password = match.group(1)
    assert len(password) >= 12
    admin = user("admin")
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert admin.check_password(password)

    again = run("ensure_admin")
    assert "exists" in again and password not in again
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert user("admin").check_password(password)  # not reset by the second run
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_name, entry.username) == ("user.create", "admin", "system")
    assert password not in str(entry.params)


def test_ensure_admin_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DASHBOARD_ADMIN_PASSWORD", "env-pass-4567")
    out = run("ensure_admin")
    assert "env-pass-4567" not in out and "Created admin 'admin'." in out
    assert user("admin").is_superuser
    assert user("admin").check_password("env-pass-4567")


def test_ensure_admin_with_options_creates_then_updates_the_password(monkeypatch):
    monkeypatch.delenv("DASHBOARD_ADMIN_PASSWORD", raising=False)
    run("ensure_admin", "--username", "root", "--password", "first-pass-1")
    assert user("root").is_superuser and user("root").check_password("first-pass-1")
    out = run("ensure_admin", "--username", "root", "--password", "second-pass-2")
    assert "password updated" in out
    assert user("root").check_password("second-pass-2")
    assert get_user_model().objects.count() == 1


# ---------------------------------------------------------------- add_host


@pytest.mark.live
def test_add_host_registers_a_reachable_engine_idempotently():
    out = run("add_host", "local", "unix:///var/run/docker.sock")
    assert out.startswith("Added local (unix:///var/run/docker.sock): reachable — Docker ")
    host = Host.objects.get(name="local")
    assert host.state == Host.State.REACHABLE and host.engine_version
    assert host.engine_version in out

    again = run("add_host", "local", "unix:///var/run/docker.sock")
    assert again.startswith("Host exists: local") and "reachable" in again
    assert Host.objects.count() == 1
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.username, entry.host_name) == ("host.create", "system", "local")


@pytest.mark.live
def test_add_host_with_a_new_url_updates_the_host():
    run("add_host", "local", "unix:///tmp/nope.sock")
    assert Host.objects.get().state == Host.State.UNREACHABLE
    out = run("add_host", "local", "unix:///var/run/docker.sock")
    host = Host.objects.get()
    assert (host.url, host.state) == ("unix:///var/run/docker.sock", Host.State.REACHABLE)
    assert "reachable" in out and "UNREACHABLE" not in out
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "host.create",
        "host.update",
    ]


def test_add_host_reports_an_unreachable_engine():
    out = run("add_host", "nope", "unix:///tmp/nope.sock")
    assert "nope (unix:///tmp/nope.sock): UNREACHABLE" in out and "socket not found" in out
    host = Host.objects.get(name="nope")
    assert host.state == Host.State.UNREACHABLE and "socket not found" in host.last_error


@pytest.mark.parametrize("url", ["http://127.0.0.1:2375", "/var/run/docker.sock", "unix://rel"])
def test_add_host_with_a_bad_url_is_a_command_error(url):
    with pytest.raises(CommandError, match="unix:/// or tcp://"):
        run("add_host", "bad", url)
    assert not Host.objects.exists()
    assert not AuditEntry.objects.exists()


# ---------------------------------------------------------------- add_user


def test_add_user_with_team_and_role_creates_team_and_membership():
    out = run(
        "add_user", "bob", "--password", "bob-pass-123", "--team", "ops", "--role", "operator"
    )
    assert "Created user bob." in out and "Created team ops." in out
    assert "bob is operator in ops." in out
    bob = user("bob")
    assert bob.check_password("bob-pass-123") and not bob.is_superuser
    membership = Membership.objects.get(user=bob)
    assert (membership.team.name, membership.role) == ("ops", Role.OPERATOR)
    assert list(AuditEntry.objects.order_by("id").values_list("action", "username")) == [
        ("user.create", "system"),
        ("team.create", "system"),  # the team is made through the audited service too
        ("team.member_add", "system"),
    ]


def test_add_user_again_updates_password_and_role_without_duplicates():
    run("add_user", "bob", "--password", "bob-pass-123", "--team", "ops", "--role", "operator")
    out = run("add_user", "bob", "--password", "new-pass-456", "--team", "ops", "--role", "admin")
    assert "User bob exists; password updated." in out and "Created team" not in out
    bob = user("bob")
    assert bob.check_password("new-pass-456")
    assert get_user_model().objects.filter(username="bob").count() == 1
    assert Team.objects.filter(name="ops").count() == 1
    assert list(Membership.objects.filter(user=bob).values_list("team__name", "role")) == [
        ("ops", Role.ADMIN)
    ]


def test_add_user_to_an_existing_team_in_a_second_team():
    Team.objects.create(name="ops")
    run("add_user", "bob", "--password", "bob-pass-123", "--team", "ops")
    run("add_user", "bob", "--password", "bob-pass-123", "--team", "dev", "--role", "operator")
    assert set(Membership.objects.filter(user=user("bob")).values_list("team__name", "role")) == {
        ("ops", Role.VIEWER),
        ("dev", Role.OPERATOR),
    }


def test_add_user_without_team_is_a_plain_user():
    out = run("add_user", "carol", "--password", "carol-pass-1")
    assert "Created user carol." in out
    assert not Membership.objects.filter(user=user("carol")).exists()


def test_role_without_team_is_refused_and_creates_nobody():
    with pytest.raises(CommandError, match="--role needs --team"):
        run("add_user", "dave", "--password", "dave-pass-1", "--role", "admin")
    assert not get_user_model().objects.filter(username="dave").exists()


def test_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        run("add_user", "dave", "--password", "p-12345678", "--team", "ops", "--role", "root")
    assert not get_user_model().objects.filter(username="dave").exists()
    assert not Team.objects.filter(name="ops").exists()


def test_password_is_required():
    with pytest.raises(CommandError, match="--password"):
        run("add_user", "dave")


def test_add_user_admin_flag_makes_a_dashboard_admin_not_a_superuser():
    out = run("add_user", "erin", "--password", "erin-pass-1", "--admin")
    assert "erin is a dashboard admin." in out
    erin = user("erin")
    assert not erin.is_superuser and erin.dashboard_profile.dashboard_admin
    assert access.is_admin(erin)
    assert ("user.create", "system") in AuditEntry.objects.values_list("action", "username")


def test_add_user_as_a_team_admin_is_not_a_dashboard_admin():
    run("add_user", "frank", "--password", "frank-pass-1", "--team", "ops", "--role", "admin")
    assert not access.is_admin(user("frank"))


# ---------------------------------------------------------------- add_host grants


def test_add_host_grants_teams_and_keeps_earlier_grants():
    Team.objects.create(name="ops")
    Team.objects.create(name="dev")
    out = run("add_host", "nope", "unix:///tmp/nope.sock", "--team", "ops")
    assert "open to ops" in out
    host = Host.objects.get(name="nope")
    assert not host.all_teams
    assert set(host.teams.values_list("name", flat=True)) == {"ops"}
    run("add_host", "nope", "unix:///tmp/nope.sock", "--team", "dev")
    assert set(host.teams.values_list("name", flat=True)) == {"ops", "dev"}
    run("add_host", "nope", "unix:///tmp/nope.sock", "--all-teams")
    host.refresh_from_db()
    assert host.all_teams


def test_add_host_without_grants_is_open_to_no_team():
    out = run("add_host", "nope", "unix:///tmp/nope.sock")
    assert "open to no team yet" in out
    host = Host.objects.get(name="nope")
    assert not host.all_teams and not host.teams.exists()


def test_add_host_with_an_unknown_team_is_a_command_error_and_adds_nothing():
    with pytest.raises(CommandError, match="No such team: ghost"):
        run("add_host", "nope", "unix:///tmp/nope.sock", "--team", "ghost")
    assert not Host.objects.exists()
    assert not AuditEntry.objects.exists()


def test_add_host_tcp_without_tls_needs_insecure():
    with pytest.raises(CommandError):
        run("add_host", "plain", "tcp://127.0.0.1:1")
    assert not Host.objects.exists()
    run("add_host", "plain", "tcp://127.0.0.1:1", "--insecure")
    assert Host.objects.get(name="plain").insecure
