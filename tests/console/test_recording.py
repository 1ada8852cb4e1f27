"""Recordings: asciicast v2 lines, split UTF-8 kept whole, bounded in size."""

import gzip
import json

from console.recording import TRUNCATED, Recorder


def test_split_utf8_and_event_order():
    rec = Recorder(100, 30, "/bin/sh")
    snowman = "☃".encode()
    rec.add("o", b"a" + snowman[:1])
    rec.add("o", snowman[1:] + b"b")
    rec.add("i", b"ls\r")
    rec.resize(90, 20)
    lines = gzip.decompress(rec.gzipped()).decode().splitlines()
    header = json.loads(lines[0])
    assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
    events = [json.loads(line) for line in lines[1:]]
    assert [e[1:] for e in events] == [["o", "a"], ["o", "☃b"], ["i", "ls\r"], ["r", "90x20"]]
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_recording_stops_at_the_size_limit(settings):
    settings.CONSOLE_RECORDING_MAX_BYTES = 100
    rec = Recorder(80, 24, "/bin/sh")
    for _ in range(10):
        rec.add("o", b"x" * 30)
    assert rec.truncated and rec.size <= 100
    assert rec.events[-1][2] == TRUNCATED
    assert sum(1 for e in rec.events if e[2] == "x" * 30) == 3


def test_a_session_whose_server_died_gets_outcome_unknown(cast, local_host, make_container):
    """No open socket renews it: its audit intent is completed, never left in progress."""
    from datetime import timedelta

    from django.utils import timezone

    from console.models import ConsoleSession
    from console.tasks import close_lost_sessions
    from dashboard.audit import Actor, record
    from dashboard.models import AuditEntry

    c = make_container(owner=cast.owner, team=cast.alpha)
    long_ago = timezone.now() - timedelta(minutes=10)
    lost, live = [
        ConsoleSession.objects.create(
            container=c,
            container_name=c.name,
            user=cast.operator,
            username="operator",
            command="/bin/sh",
            started_at=long_ago,
            last_seen=seen,
            audit_entry_id=record(
                Actor(cast.operator), "container.exec", target=c, result=AuditEntry.Result.PENDING
            ).pk,
        )
        for seen in (long_ago, timezone.now())
    ]

    assert close_lost_sessions() == {"closed": 1}

    entry = AuditEntry.objects.get(pk=lost.audit_entry_id)
    assert entry.result == AuditEntry.Result.UNKNOWN
    assert "the server was lost during the session" in entry.message
    assert AuditEntry.objects.get(pk=live.audit_entry_id).result == AuditEntry.Result.PENDING
    lost.refresh_from_db()
    assert lost.ended_at == long_ago
