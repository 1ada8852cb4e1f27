"""Named volumes and networks: mirrored per host and owned like containers.

A team's data lives in its volumes and its traffic in its networks, so both are
owned in the database (team, owner, created_by_dashboard). What the engine
reports (names, labels, drivers) never decides who owns them: a resource found
on an engine is unowned, visible to dashboard admins only, until one assigns it.
"""

from django.conf import settings
from django.db import models

from dashboard.models import Host, Team


class MirrorQuerySet(models.QuerySet):
    def present(self):
        return self.filter(removed_at__isnull=True)


class OwnedResource(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    driver = models.CharField(max_length=64, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # True only for what a dashboard job created (recorded by that job, never guessed).
    created_by_dashboard = models.BooleanField(default=False)
    created = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = MirrorQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["host__name", "name"]

    def __str__(self):
        return f"{self.name} on {self.host}"


class Volume(OwnedResource):
    """A named (or anonymous) volume on a host; its name is its identity there."""

    # Driver options that bind a host path make a volume a host bind in disguise.
    binds_host_path = models.BooleanField(default=False)
    mountpoint = models.CharField(max_length=1024, blank=True)

    class Meta(OwnedResource.Meta):
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="one_row_per_volume")]

    @property
    def anonymous(self):
        return len(self.name) == 64 and all(c in "0123456789abcdef" for c in self.name)


class Network(OwnedResource):
    """A Docker network on a host. The engine's built-ins (bridge, none, host) are not owned."""

    docker_id = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, blank=True)
    internal = models.BooleanField(default=False)

    class Meta(OwnedResource.Meta):
        constraints = [
            models.UniqueConstraint(fields=["host", "docker_id"], name="one_row_per_network")
        ]

    @property
    def short_id(self):
        return self.docker_id[:12]
