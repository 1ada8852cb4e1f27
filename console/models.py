"""Recorded console sessions: one row per exec session opened from the dashboard."""

import gzip
import json

from django.conf import settings
from django.db import models


class ConsoleSession(models.Model):
    """Who ran what in which container, when, and (gzip'ed asciicast v2) what was seen.

    The recording holds what was typed and what came back: it may contain secrets,
    so only dashboard admins may read it (`console.views.replay`).
    """

    container = models.ForeignKey(
        "containers.Container", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    container_name = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    command = models.TextField()
    exec_user = models.CharField(max_length=64, blank=True)
    privileged = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    # Renewed by the open socket's access re-checks; a session whose server died stops
    # renewing it, and `close_lost_sessions` then completes its audit entry.
    last_seen = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The audit entry (action container.exec) this session completes.
    audit_entry_id = models.BigIntegerField(unique=True)
    recording = models.BinaryField(blank=True, default=b"")
    recording_truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.username} in {self.container_name} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self):
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def cast(self):
        """The recording as asciicast text (header line, then one event per line)."""
        return gzip.decompress(bytes(self.recording)).decode() if self.recording else ""

    def events(self):
        lines = self.cast().splitlines()
        return [json.loads(line) for line in lines[1:]]
