"""API tokens: hashed at rest, shown once, refused when expired/revoked/malformed,
managed on the API tokens page and by `manage.py create_token`, audited."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from api import tokens
from api.models import ApiToken, hash_secret
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Membership, Role, Team
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db


def test_only_a_hash_is_stored_and_the_token_works(cast, make_token):
    text = make_token(cast.viewer, name="ci")
    row = ApiToken.objects.get(name="ci")
    prefix, secret = re.match(r"^dky_([0-9a-f]{12})_(.{43})$", text).groups()
    assert row.prefix == prefix
    assert row.secret_hash == hash_secret(secret)
    stored = " ".join(str(v) for v in ApiToken.objects.filter(pk=row.pk).values().get().values())
    assert secret not in stored
    response = Api(text).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "viewer"
    assert response.json()["token"]["name"] == "ci"


@pytest.mark.parametrize(
    "mangle,expected",
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "not valid"),  # wrong secret
        (lambda t: "dky_000000000000_" + t.split("_", 2)[2], "not valid"),  # unknown prefix
        (lambda t: t[:20], "malformed"),
        (lambda t: "Bearer", "malformed"),
        (lambda t: t + " extra", "Authorization: Bearer"),
        (lambda t: "", "Authorization: Bearer"),
    ],
)
def test_a_bad_token_is_a_401_with_a_json_error(cast, make_token, mangle, expected):
    text = make_token(cast.admin)
    response = Client().get(
        "/api/v1/hosts/", headers={"Authorization": f"Bearer {mangle(text)}".rstrip()}
    )
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert expected in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_is_a_401_saying_what_to_send():
    response = Client().get("/api/v1/containers/")
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]


def test_expired_revoked_and_inactive_are_401(cast, make_token):
    expired = make_token(cast.owner, name="old")
    ApiToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = make_token(cast.owner, name="gone")
    tokens.revoke_token(Actor.system(), ApiToken.objects.get(name="gone"))
    inactive = make_token(cast.viewer, name="inactive")
    cast.viewer.is_active = False
    cast.viewer.save()

    for text, words in [(expired, "expired"), (revoked, "revoked"), (inactive, "deactivated")]:
        response = Api(text).get("/api/v1/hosts/")
        assert response.status_code == 401, words
        assert words in response.json()["error"]


def test_last_use_is_recorded_with_the_client_address(cast, make_token):
    text = make_token(cast.viewer, name="ci")
    Client(REMOTE_ADDR="10.1.2.3").get("/api/v1/me/", headers={"Authorization": f"Bearer {text}"})
    row = ApiToken.objects.get(name="ci")
    assert row.last_used_ip == "10.1.2.3"
    assert timezone.now() - row.last_used_at < timedelta(seconds=10)


def test_a_team_restriction_must_be_a_team_of_the_user(cast):
    with pytest.raises(Exception, match="not a member of team beta"):
        tokens.create_token(Actor.system(), cast.viewer, "x", team=cast.beta)
    # A dashboard admin may restrict a token to any team.
    row, _ = tokens.create_token(Actor.system(), cast.admin, "x", team=cast.beta)
    assert row.team == cast.beta


def test_a_token_of_a_team_the_user_left_is_refused(cast, make_token):
    text = make_token(cast.viewer, team=cast.alpha)
    Membership.objects.filter(user=cast.viewer, team=cast.alpha).delete()
    response = Api(text).get("/api/v1/containers/")
    assert response.status_code == 401
    assert "no longer a member of team alpha" in response.json()["error"]


def test_a_team_deleted_takes_its_restricted_tokens_with_it(cast, make_token):
    """Never widened: a token restricted to a deleted team does not become unrestricted."""
    gamma = Team.objects.create(name="gamma")
    Membership.objects.create(user=cast.viewer, team=gamma, role=Role.VIEWER)
    text = make_token(cast.viewer, team=gamma)
    gamma.delete()
    assert Api(text).get("/api/v1/containers/").status_code == 401


def test_create_token_command_prints_a_working_token(cast):
    out = io.StringIO()
    call_command(
        "create_token", "operator", "deploy", "--read-only", "--expires", "7", "--team", "alpha",
        stdout=out,
    )  # fmt: skip
    text = out.getvalue().strip()
    row = ApiToken.objects.get(name="deploy")
    assert (row.read_only, row.team, row.user) == (True, cast.alpha, cast.operator)
    assert timedelta(days=6) < row.expires_at - timezone.now() <= timedelta(days=7)
    assert Api(text).get("/api/v1/me/").json()["token"]["read_only"] is True
    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.username == "system"
    assert text not in str(entry.params) and row.prefix not in entry.message


def test_create_token_command_says_what_is_wrong(cast):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("create_token", "nobody", "x")
    with pytest.raises(CommandError, match="1 to 3650 days"):
        call_command("create_token", "viewer", "x", "--expires", "0")
    with pytest.raises(CommandError, match="not a member of team beta"):
        call_command("create_token", "viewer", "x", "--team", "beta")


# ---------------------------------------------------------------- the API tokens page


def test_the_page_creates_a_token_shows_it_once_and_audits_it(cast, login):
    client = login(cast.operator)
    response = client.post(
        "/tokens/", {"name": "ci", "days": "30", "team": cast.alpha.pk, "read_only": "on"}
    )
    assert response.status_code == 200
    text = re.search(rb"dky_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", response.content).group().decode()
    assert "no-store" in response["Cache-Control"]
    assert Api(text).get("/api/v1/me/").json()["token"] == {
        "name": "ci",
        "read_only": True,
        "team": "alpha",
        "expires_at": ApiToken.objects.get().expires_at.isoformat().replace("+00:00", "Z"),
    }
    # Listed with its use, never shown again.
    listing = client.get("/tokens/").content.decode()
    assert "ci" in listing and text not in listing and "from 127.0.0.1" in listing
    entry = AuditEntry.objects.get(action="api_token.create")
    assert (entry.username, entry.target_name, entry.params["read_only"]) == (
        "operator",
        "ci",
        True,
    )


def test_the_page_refuses_a_team_the_user_is_not_in(cast, login):
    response = login(cast.viewer).post("/tokens/", {"name": "x", "days": "7", "team": cast.beta.pk})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_users_revoke_their_own_tokens_only_and_admins_anyones(cast, login, make_token):
    mine = make_token(cast.viewer, name="mine")
    row = ApiToken.objects.get(name="mine")

    # Another user: not found (and not listed).
    assert login(cast.operator).post(f"/tokens/{row.pk}/revoke/").status_code == 404
    assert "mine" not in login(cast.operator).get("/tokens/").content.decode()
    assert Api(mine).get("/api/v1/me/").status_code == 200

    # A dashboard admin lists and revokes it.
    admin = login(cast.admin)
    assert "mine" in admin.get("/tokens/").content.decode()
    assert admin.post(f"/tokens/{row.pk}/revoke/").status_code == 302
    assert Api(mine).get("/api/v1/me/").status_code == 401
    entry = AuditEntry.objects.get(action="api_token.revoke")
    assert (entry.username, entry.params["user"]) == ("admin", "viewer")
    row.refresh_from_db()
    assert row.revoked_by == cast.admin


def test_the_user_menu_links_to_the_tokens_page(cast, login):
    assert b'href="/tokens/"' in login(cast.viewer).get("/").content


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(cast, make_token, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # as DASHBOARD_TRUSTED_PROXIES=1
    text = make_token(cast.viewer, name="ci")
    Client(REMOTE_ADDR="10.0.0.1").get(
        "/api/v1/me/",
        headers={"Authorization": f"Bearer {text}", "X-Forwarded-For": "203.0.113.7"},
    )
    assert ApiToken.objects.get(name="ci").last_used_ip == "203.0.113.7"


def test_without_a_trusted_proxy_a_forged_forwarded_address_is_ignored(cast, make_token):
    text = make_token(cast.viewer, name="ci")
    Client(REMOTE_ADDR="10.0.0.1").get(
        "/api/v1/me/",
        headers={"Authorization": f"Bearer {text}", "X-Forwarded-For": "203.0.113.7"},
    )
    assert ApiToken.objects.get(name="ci").last_used_ip == "10.0.0.1"
