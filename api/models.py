"""Personal API tokens: only a hash is stored; the token is shown once, at creation."""

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models import Team


def hash_secret(secret):
    """SHA-256 of the token's secret part: the secret is 256 random bits, so a fast hash
    is enough (a slow one only slows every API request)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiToken(models.Model):
    """A user's token for scripts and CI: `dky_<prefix>_<secret>`.

    The prefix finds the row; the secret is compared by its hash in constant time.
    A token acts as its user, narrowed by `read_only` (no writes) and `team` (that
    team's things only) — see dashboard.access.narrow.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=64)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    # CASCADE, never SET_NULL: a restricted token must not widen when its team goes.
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"API token {self.name} of {self.user}"

    @property
    def revoked(self):
        return self.revoked_at is not None

    @property
    def expired(self):
        return self.expires_at <= timezone.now()

    @property
    def usable(self):
        return not self.revoked and not self.expired

    @property
    def scope_label(self):
        """What the token may do, in words ("read-only, team web only")."""
        parts = ["read-only" if self.read_only else "read and write"]
        if self.team_id:
            parts.append(f"team {self.team.name} only")
        return ", ".join(parts)

    def matches(self, secret):
        import hmac

        return hmac.compare_digest(hash_secret(secret), self.secret_hash)
