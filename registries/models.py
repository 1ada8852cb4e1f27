"""Image registries: where teams pull from and push to, with stored credentials.

A registry is a global thing: dashboard admins create it and grant it to teams
(or to all teams), as they do hosts. Its password or token is stored encrypted
(Fernet, `dashboard.crypto`) and is never shown back; only worker jobs and the
registry client decrypt it, to talk to the registry.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from dashboard import crypto
from dashboard.models import Team

# Docker Hub's names: a reference without a registry host goes there.
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")


class Registry(models.Model):
    """An image registry (Distribution API v2) and the credentials to use it."""

    name = models.CharField(max_length=64, unique=True)
    # Normalized by `services.normalize_url`: scheme://host[:port], nothing after it.
    url = models.CharField(max_length=255, help_text="https://registry.example.com[:port]")
    username = models.CharField(max_length=255, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    # A private CA for the registry's certificate (PEM); empty = the machine's CAs.
    ca_cert = models.TextField(blank=True)
    tls_verify = models.BooleanField(default=True)
    all_teams = models.BooleanField(default=False, help_text="Usable by every team")
    teams = models.ManyToManyField(Team, blank=True, related_name="registries")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The last "test login": when, and what went wrong (empty = it worked).
    last_checked = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self):
        return self.name

    @property
    def password(self):
        return crypto.decrypt(self.password_encrypted)

    @password.setter
    def password(self, value):
        self.password_encrypted = crypto.encrypt(value)

    @property
    def has_password(self):
        return bool(self.password_encrypted)

    @property
    def address(self):
        """host[:port] as an image reference names it (lower case)."""
        return urlsplit(self.url).netloc.lower()

    @property
    def scheme(self):
        return urlsplit(self.url).scheme

    @property
    def is_docker_hub(self):
        return self.address in DOCKER_HUB_HOSTS

    @property
    def api_url(self):
        """Where the v2 API lives (Docker Hub's API host is not its reference name)."""
        if self.is_docker_hub:
            return "https://registry-1.docker.io"
        return self.url
