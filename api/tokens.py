"""Creating, finding and revoking API tokens. The only code that writes ApiToken rows;
creation and revocation are audited."""

import re
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dashboard import access
from dashboard.audit import record
from dashboard.models import Membership

from .models import ApiToken, hash_secret

PREFIX = "dky_"
# dky_ + 12 hex (lookup) + _ + 43 url-safe characters (256 random bits).
TOKEN_RE = re.compile(r"^dky_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
MAX_DAYS = 3650
DEFAULT_DAYS = 90
# Writing "last used" on every request would make each API call a DB write.
LAST_USED_EVERY = timedelta(seconds=30)


class TokenError(Exception):
    """Why a presented token is refused, as one sentence for the client."""


def allowed_teams(user):
    """Teams `user` may restrict a token to: their own, or any for a dashboard admin."""
    from dashboard.models import Team

    if access.is_admin(user):
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user).distinct()


def create_token(actor, user, name, *, days=DEFAULT_DAYS, read_only=False, team=None):
    """Make a token for `user`; returns (ApiToken, the token text, shown this once).

    The actor creates tokens for themselves (the pages) or is the server itself
    (`manage.py create_token`).
    """
    if not actor.is_system and getattr(actor.user, "pk", None) != user.pk:
        raise PermissionDenied("You may create API tokens for yourself only.")
    if not user.is_active:
        raise ValidationError("This user is deactivated.")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValidationError("Give the token a name of 1 to 64 characters.")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"A token expires after 1 to {MAX_DAYS} days.")
    if team is not None and not allowed_teams(user).filter(pk=team.pk).exists():
        raise ValidationError(f"{user} is not a member of team {team.name}.")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        read_only=read_only,
        team=team,
        expires_at=timezone.now() + timedelta(days=days),
    )
    record(
        actor,
        "api_token.create",
        target=token,
        target_type="api_token",
        params={
            "user": user.get_username(),
            "read_only": read_only,
            "team": team.name if team else "",
            "expires": token.expires_at.isoformat(timespec="seconds"),
        },
    )
    return token, f"{PREFIX}{prefix}_{secret}"


def visible_tokens(user):
    """Tokens `user` may list and revoke: their own; every token for a dashboard admin."""
    qs = ApiToken.objects.select_related("user", "team", "revoked_by")
    return qs if access.is_admin(user) else qs.filter(user=user)


def revoke_token(actor, token):
    """Revoke a token (its owner or a dashboard admin); returns False if it was already."""
    if not actor.is_system and not visible_tokens(actor.user).filter(pk=token.pk).exists():
        raise PermissionDenied("You may revoke your own tokens only.")
    now = timezone.now()
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=actor.user if actor.user else None
    )
    if done:
        token.revoked_at = now
        record(
            actor,
            "api_token.revoke",
            target=token,
            target_type="api_token",
            params={"user": token.user.get_username()},
        )
    return bool(done)


def authenticate(raw, source_ip=None):
    """The usable token `raw` names, or TokenError saying why not. Marks it used."""
    match = TOKEN_RE.match(raw or "")
    if not match:
        raise TokenError("The API token is malformed; it looks like dky_<12 hex>_<43 characters>.")
    prefix, secret = match.groups()
    token = ApiToken.objects.select_related("user", "team").filter(prefix=prefix).first()
    if token is None:
        hash_secret(secret)  # about the same time as a wrong secret
        raise TokenError("The API token is not valid.")
    if not token.matches(secret):
        raise TokenError("The API token is not valid.")
    if token.revoked:
        raise TokenError("The API token was revoked; create a new one.")
    if token.expired:
        raise TokenError("The API token has expired; create a new one.")
    if not token.user.is_active:
        raise TokenError("The user of this API token is deactivated.")
    if token.team_id and not (
        access.is_admin(token.user)
        or Membership.objects.filter(user=token.user, team_id=token.team_id).exists()
    ):
        # The gate would show nothing anyway; say why instead of answering empty lists.
        raise TokenError(f"The token's user is no longer a member of team {token.team.name}.")
    _mark_used(token, source_ip)
    return token


def _mark_used(token, source_ip):
    now = timezone.now()
    if (
        token.last_used_at
        and now - token.last_used_at < LAST_USED_EVERY
        and token.last_used_ip == source_ip
    ):
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=source_ip)
    token.last_used_at, token.last_used_ip = now, source_ip
