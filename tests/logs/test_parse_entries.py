"""The json-file parser of the archive, on entries shaped as the engine writes them."""

import json

from logs.archive import _parse_entries


def entry(text, stream="stdout", t="2026-11-28T12:00:00.000000001Z"):
    return json.dumps({"log": text, "stream": stream, "time": t}).encode() + b"\n"


def test_whole_lines_are_parsed_in_one_go_and_all_bytes_consumed():
    data = entry("a\n") + entry("é ü\n", "stderr") + entry("b\n")
    lines = []
    assert _parse_entries(data, lines) == len(data)
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("stdout", "a"),
        ("stderr", "é ü"),
        ("stdout", "b"),
    ]


def test_a_long_line_still_being_written_is_left_for_the_next_read():
    head = entry("x\n")
    partial = entry("y" * 16384) + entry("y" * 10)  # no newline yet: the line goes on
    lines = []
    assert _parse_entries(head + partial + b'{"log":"unfinished', lines) == len(head)
    assert [ln.text for ln in lines] == ["x"]
    # The next read, from there, completes it.
    rest = partial + entry("z\n")
    more = []
    assert _parse_entries(rest, more) == len(rest)
    assert [ln.text for ln in more] == ["y" * 16394 + "z"]


def test_a_broken_entry_is_skipped_and_the_others_kept():
    data = entry("a\n") + b"{not json\n" + entry("b\n")
    lines = []
    assert _parse_entries(data, lines) == len(data)
    assert [ln.text for ln in lines] == ["a", "b"]
