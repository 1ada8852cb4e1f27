"""The container mirror: one row per container seen on a host."""

from django.conf import settings
from django.db import models

from dashboard.models import Host, Team


class ContainerQuerySet(models.QuerySet):
    def present(self):
        return self.filter(removed_at__isnull=True)


class Container(models.Model):
    """A container on a host as last seen by sync or the events watcher.

    Ownership (owner, team) lives here only; it is never read from Docker labels,
    which whoever creates a container can set to anything.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="containers")
    docker_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    image = models.CharField(max_length=512, blank=True)
    command = models.TextField(blank=True)
    state = models.CharField(max_length=16, blank=True)  # created running paused exited dead …
    status = models.CharField(max_length=128, blank=True)  # "Up 3 minutes (healthy)"
    health = models.CharField(max_length=16, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    ports = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="containers"
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = ContainerQuerySet.as_manager()

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "docker_id"], name="one_row_per_container")
        ]

    def __str__(self):
        return f"{self.name} on {self.host}"

    @property
    def short_id(self):
        return self.docker_id[:12]
