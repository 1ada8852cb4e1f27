"""The log archive: what a container printed, kept after the container is gone."""

import gzip
import json

import orjson
from django.db import models

from containers.models import Container


class LogCursor(models.Model):
    """How far a container's log has been archived (one per container)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        NOT_ARCHIVED = "not-archived"  # a log driver the engine cannot read back

    container = models.OneToOneField(Container, on_delete=models.CASCADE, related_name="log_cursor")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    driver = models.CharField(max_length=32, blank=True)
    path = models.CharField(max_length=1024, blank=True)
    inode = models.BigIntegerField(null=True, blank=True)
    offset = models.BigIntegerField(default=0)
    last_time = models.CharField(max_length=40, blank=True)  # RFC 3339, for the API fallback
    updated = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"log cursor of {self.container_id} at {self.offset}"


class LogChunk(models.Model):
    """A run of lines of one container, gzip-compressed JSON [[stream, time, text], …]."""

    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="log_chunks")
    first_time = models.CharField(max_length=40, blank=True)
    last_time = models.CharField(max_length=40, blank=True)
    line_count = models.IntegerField()
    size = models.IntegerField()  # compressed bytes, for retention by size
    data = models.BinaryField()
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["container", "pk"]

    def __str__(self):
        return f"{self.line_count} lines of {self.container_id}"

    @staticmethod
    def pack(lines):
        rows = [[ln.stream, ln.time, ln.text] for ln in lines]
        try:
            data = orjson.dumps(rows)
        except TypeError:  # orjson refuses lone surrogates; the standard library escapes them
            data = json.dumps(rows).encode()
        # Level 1: a third of level 6's CPU on log text, for chunks a little larger.
        return gzip.compress(data, compresslevel=1)

    def lines(self):
        from .render import Line

        data = gzip.decompress(bytes(self.data))
        try:
            rows = orjson.loads(data)
        except ValueError:  # written by json.dumps with an escaped lone surrogate
            rows = json.loads(data)
        return [Line(*row) for row in rows]
