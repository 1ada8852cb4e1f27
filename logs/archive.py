"""Capture a container's log into LogChunks, so it outlives the container.

Fast path: the engine's own json-file log on disk (`LogPath` from inspect), read
from the cursor's offset and followed by inode across rotation (`-json.log.1`).
Fallback: the logs API since the last archived time (remote hosts, unreadable
file). Other log drivers are marked "not archived". Captures are idempotent: the
chunk is written only if the cursor still points where the read started.
"""

import gzip
import json
import logging
import os
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from dashboard.engine import EngineError, engine

from .engine_stream import open_client, read_lines, time_ns
from .models import LogChunk, LogCursor
from .render import MAX_LINE_BYTES, Line, decode

log = logging.getLogger(__name__)
API_DRIVERS = {"json-file", "local", "journald"}
CHUNK_LINES = 10_000
READ_BYTES = 64 * 1024 * 1024  # at most this much of a file per pass


class _Moved(Exception):
    """Another capture advanced the cursor first: this one's lines are dropped."""


def _parse_entries(data, lines):
    """Complete json-file entries in `data` into `lines`; bytes consumed (whole lines only).

    Parsed with one orjson.loads for the whole read (one call per line costs most of a
    capture's CPU); a read with a broken entry (or one orjson refuses, such as an
    escaped lone surrogate) falls back to the standard library, one call per line.
    """
    end = data.rfind(b"\n")
    if end < 0:
        return 0
    raw = data[:end].split(b"\n")
    try:
        entries = orjson.loads(b"[" + b",".join(raw) + b"]")
        ends = None
    except ValueError:
        entries, ends, pos = [], [], 0
        for item in raw:
            pos += len(item) + 1
            try:
                entries.append(json.loads(item))
            except ValueError:
                entries.append(None)
            ends.append(pos)
    if ends is None:
        texts = [e.get("log", "") for e in entries]
        if all(t.endswith("\n") and t.isascii() and len(t) <= MAX_LINE_BYTES for t in texts):
            # The usual read: whole short ASCII lines only, nothing to join, decode or cut.
            lines.extend(
                Line(e.get("stream", "stdout"), e.get("time", ""), t[:-1])
                for e, t in zip(entries, texts, strict=True)
            )
            return end + 1
    consumed, pending = 0, None
    for i, entry in enumerate(entries):
        at = ends[i] if ends is not None else None
        if entry is None:
            consumed = at
            continue
        text = entry.get("log", "")
        if (
            pending is None
            and text.endswith("\n")
            and text.isascii()
            and len(text) <= MAX_LINE_BYTES
        ):
            # The common case: one whole short ASCII line, nothing to decode or cut.
            lines.append(Line(entry.get("stream", "stdout"), entry.get("time", ""), text[:-1]))
            consumed = at
            continue
        if pending is None:
            pending = [entry.get("stream", "stdout"), entry.get("time", ""), [], 0, False]
        if not pending[4]:
            chunk = text.encode("utf-8", "surrogateescape")
            room = MAX_LINE_BYTES - pending[3]
            if len(chunk) > room:
                chunk, pending[4] = chunk[:room], True
            pending[2].append(chunk)
            pending[3] += len(chunk)
        if text.endswith("\n"):  # a whole entry (long lines come in 16 KB partial entries)
            body = b"".join(pending[2])
            if body.endswith(b"\n"):
                body = body[:-1]
            lines.append(Line(pending[0], pending[1], decode(body, pending[4])))
            pending, consumed = None, at
    if ends is None:
        # Bytes consumed: up to the end of the last entry that completed a line.
        consumed = _offset_after(raw, entries, pending)
    return consumed


def _offset_after(raw, entries, pending):
    """Bytes up to the last entry that ended a line (a partial long line stays unread)."""
    if pending is None:
        return sum(map(len, raw)) + len(raw)
    # Walk back over the trailing partial entries of the unfinished line.
    keep = len(raw)
    while keep > 0 and not entries[keep - 1].get("log", "").endswith("\n"):
        keep -= 1
    return sum(len(r) + 1 for r in raw[:keep])


def _read_file(path, offset, lines):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(READ_BYTES)
    return offset + _parse_entries(data, lines)


def _read_newer(path, after_ns, lines):
    """Lines of a rotated file newer than the last archived line (`after_ns`; None: all).

    For a file the engine compressed (`compress=true`: -json.log.1.gz is a new file, so
    there is no inode to follow) or one older than the cursor's lost file."""
    found = []
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            _parse_entries(f.read(READ_BYTES), found)
    else:
        _read_file(path, 0, found)
    for line in found:
        at = time_ns(line.time) if after_ns is not None else None
        if at is None or at > after_ns:
            lines.append(line)


def _inode_reused(path, offset, last_time):
    """Is the file at the cursor's inode a newer file? With `compress=true` the engine
    deletes a rotated file once compressed, and the filesystem may give its inode number
    to the next log file: that file then starts after the last archived line, where the
    cursor's own file started at or before it."""
    after = time_ns(last_time)
    if not offset or after is None:
        return False
    with open(path, "rb") as f:
        first = f.readline(64 * 1024)
    try:
        at = time_ns(json.loads(first).get("time", ""))
    except (ValueError, AttributeError):
        return False
    return at is not None and at > after


def _rotated(path):
    """The rotated files, newest first: (path, inode or None when compressed)."""
    found = []
    for n in range(1, 101):
        try:
            found.append((f"{path}.{n}", os.stat(f"{path}.{n}").st_ino))
            continue
        except FileNotFoundError:
            pass
        if not os.path.exists(f"{path}.{n}.gz"):
            break
        found.append((f"{path}.{n}.gz", None))
    return found


def _from_file(cursor, path):
    """Lines new since the cursor, and the cursor's next (inode, offset)."""
    st = os.stat(path)
    lines, offset = [], cursor.offset
    if cursor.inode is not None and (
        st.st_ino != cursor.inode or _inode_reused(path, cursor.offset, cursor.last_time)
    ):
        # Rotated since the last pass (maybe several times): finish the file the cursor
        # was in (found by inode among -json.log.1, .2, …), then the newer ones, then
        # the current file from its start. When the engine compressed it meanwhile
        # (-json.log.1.gz: a new inode), take the compressed files' lines newer than
        # the last archived one.
        rotated = _rotated(path)
        at = next((i for i, (_p, ino) in enumerate(rotated) if ino == cursor.inode), None)
        after_ns = time_ns(cursor.last_time)
        if at is not None:
            _read_file(rotated[at][0], cursor.offset, lines)
            newer = rotated[:at]
        else:
            newer = rotated
        for older_path, _ino in reversed(newer):
            _read_newer(older_path, None if at is not None else after_ns, lines)
        offset = 0
    elif st.st_size < offset:
        offset = 0  # truncated
    offset = _read_file(path, offset, lines)
    return lines, st.st_ino, offset


def _since_epoch(rfc3339):
    """The engine's `since` just after an RFC 3339 time with nanoseconds."""
    if not rfc3339:
        return None
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    try:
        seconds = int(datetime.fromisoformat(head + "+00:00").timestamp())
    except ValueError:
        return None
    nanos = int((frac + "000000000")[:9]) + 1
    return f"{seconds + nanos // 10**9}.{nanos % 10**9:09d}"


def _from_api(cursor, host, docker_id):
    client = open_client(host, timeout=settings.DOCKER_TIMEOUT * 3)
    try:
        return list(read_lines(client, docker_id, since=_since_epoch(cursor.last_time)))
    finally:
        client.close()


def capture(container, client=None, cursor=None):
    """Archive what `container` printed since the last capture. Returns lines added.

    `cursor`: the container's LogCursor when the caller read it already (a pass over a
    host reads them all in one query).
    """
    if cursor is None:
        cursor, _ = LogCursor.objects.get_or_create(container=container)
    if cursor.status == LogCursor.Status.NOT_ARCHIVED or container.removed_at is not None:
        return 0
    if _unchanged(cursor, container):
        return 0  # a quiet container: no inspect, no read, no write
    if _file_known(cursor, container):
        driver, path = cursor.driver, cursor.path  # learnt by an earlier inspect
    else:
        if client is None:
            with engine(container.host) as c:
                info = c.api.inspect_container(container.docker_id)
        else:
            info = client.api.inspect_container(container.docker_id)
        driver = ((info.get("HostConfig") or {}).get("LogConfig") or {}).get("Type", "")
        path = info.get("LogPath") or ""
    before = (cursor.inode, cursor.offset, cursor.last_time)
    if driver not in API_DRIVERS:
        LogCursor.objects.filter(pk=cursor.pk).update(
            status=LogCursor.Status.NOT_ARCHIVED, driver=driver
        )
        return 0
    inode, offset = cursor.inode, cursor.offset
    lines = None
    if driver == "json-file" and path and container.host.url.startswith("unix://"):
        try:
            lines, inode, offset = _from_file(cursor, path)
        except OSError:
            lines = None
    if lines is None:
        lines = _from_api(cursor, container.host, container.docker_id)
    last_time = lines[-1].time if lines else cursor.last_time
    try:
        with transaction.atomic():
            moved = LogCursor.objects.filter(
                pk=cursor.pk, inode=before[0], offset=before[1], last_time=before[2]
            ).update(inode=inode, offset=offset, last_time=last_time, driver=driver, path=path)
            if not moved:
                raise _Moved
            for i in range(0, len(lines), CHUNK_LINES):
                part = lines[i : i + CHUNK_LINES]
                data = LogChunk.pack(part)
                LogChunk.objects.create(
                    container=container,
                    first_time=part[0].time,
                    last_time=part[-1].time,
                    line_count=len(part),
                    size=len(data),
                    data=data,
                )
    except _Moved:
        return 0
    return len(lines)


def _file_known(cursor, container):
    """The cursor already knows the container's json-file log, readable here."""
    return (
        cursor.driver == "json-file"
        and bool(cursor.path)
        and container.host.url.startswith("unix://")
        and os.path.exists(cursor.path)
    )


def _unchanged(cursor, container):
    """The log file the cursor knows is where the cursor left it (same inode and size)."""
    if cursor.driver != "json-file" or not cursor.path or cursor.inode is None:
        return False
    if not container.host.url.startswith("unix://"):
        return False
    try:
        st = os.stat(cursor.path)
    except OSError:
        return False  # gone or unreadable: inspect again to learn why
    return st.st_ino == cursor.inode and st.st_size == cursor.offset


def capture_quietly(container, client=None, cursor=None):
    try:
        return capture(container, client, cursor)
    except EngineError as exc:
        log.info("log capture of %s: %s", container.short_id, exc.message)
    except Exception:
        log.warning("log capture of %s failed", container.short_id, exc_info=True)
    return 0


def capture_host(host):
    from containers.models import Container

    total = 0
    containers = list(Container.objects.present().filter(host=host).select_related("host"))
    cursors = {c.container_id: c for c in LogCursor.objects.filter(container__in=containers)}
    for container in containers:
        total += capture_quietly(container, cursor=cursors.get(container.pk))
    return total


def archived_lines(container, since=""):
    """The archived lines in order; `since` (an RFC 3339 prefix) skips, by the chunks'
    time index, the chunks that end before it (the caller still filters line by line)."""
    chunks = container.log_chunks.order_by("pk")
    if since:
        chunks = chunks.filter(Q(last_time__gte=since) | Q(last_time=""))
    for chunk in chunks.iterator(chunk_size=10):
        yield from chunk.lines()


def prune(now=None):
    """Retention: chunks older than LOG_ARCHIVE_MAX_AGE_DAYS go, then the oldest of each
    host until its archive is under LOG_ARCHIVE_MAX_BYTES_PER_HOST. Idempotent."""
    from dashboard.models import Host

    now = now or timezone.now()
    old = now - timedelta(days=settings.LOG_ARCHIVE_MAX_AGE_DAYS)
    deleted = LogChunk.objects.filter(created__lt=old).delete()[0]
    for host in Host.objects.all():
        chunks = LogChunk.objects.filter(container__host=host)
        total = chunks.aggregate(s=Sum("size"))["s"] or 0
        excess = total - settings.LOG_ARCHIVE_MAX_BYTES_PER_HOST
        if excess <= 0:
            continue
        doomed = []
        for pk, size in chunks.order_by("created", "pk").values_list("pk", "size").iterator():
            if excess <= 0:
                break
            doomed.append(pk)
            excess -= size
        deleted += LogChunk.objects.filter(pk__in=doomed).delete()[0]
    return deleted
