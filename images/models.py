"""Images per host: mirrored from each engine and owned like containers.

An image's identity on a host is its id (the digest of its configuration): tags
move, names can be made up by anyone. An image a team pulled, built, loaded or
copied is that team's, recorded by the job that made it; an image found on an
engine belongs to nobody (dashboard admins only) until one assigns it. A
dashboard admin may mark an image shared: every team of the host then sees it and
may build on it, but only its own team acts on it.
"""

from django.conf import settings
from django.db import models

from dashboard.models import Host, Team


class ImageQuerySet(models.QuerySet):
    def present(self):
        return self.filter(removed_at__isnull=True)


class Image(models.Model):
    """One image (by id) on one host, as last listed by the engine."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    docker_id = models.CharField(max_length=80)  # sha256:<64 hex>
    tags = models.JSONField(default=list, blank=True)  # ["repo:tag", …]
    digests = models.JSONField(default=list, blank=True)  # ["repo@sha256:…", …]
    size = models.BigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A base image every team of the host may see and build on (set by a dashboard admin).
    shared = models.BooleanField(default=False)
    # True only for what a dashboard job made (recorded by that job, never guessed).
    created_by_dashboard = models.BooleanField(default=False)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["host__name", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["host", "docker_id"], name="one_row_per_image")
        ]

    def __str__(self):
        return f"{self.name} on {self.host}"

    @property
    def short_id(self):
        return self.docker_id.removeprefix("sha256:")[:12]

    @property
    def name(self):
        """What an operator calls it: its first tag, else its short id."""
        return self.tags[0] if self.tags else self.short_id

    @property
    def dangling(self):
        return not self.tags

    @property
    def repositories(self):
        return sorted({t.rpartition(":")[0] for t in self.tags})
