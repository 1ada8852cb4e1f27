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
