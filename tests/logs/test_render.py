"""ANSI colours become spans with fixed classes; the text is always escaped."""

import time

from logs.params import parse
from logs.render import Line, LineAssembler, ansi_to_html, make_filter


def test_html_in_a_log_line_is_escaped():
    out = ansi_to_html('<script>alert(1)</script> <img src=x onerror="y">')
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_sgr_codes_become_classed_spans_and_escapes_stay_escaped():
    out = ansi_to_html("\x1b[1;31m<b>bad</b>\x1b[0m ok \x1b[32mgreen\x1b[39m")
    assert out == (
        '<span class="ansi-bold ansi-fg-red">&lt;b&gt;bad&lt;/b&gt;</span> ok '
        '<span class="ansi-fg-green">green</span>'
    )


def test_other_escape_sequences_are_dropped():
    assert ansi_to_html("a\x1b[2Kb\x1b]c") == "ab]c"


def test_line_html_marks_the_stream():
    html = Line("stderr", "2026-01-01T00:00:00.123456789Z", "x&y").html(timestamps=True)
    assert (
        html
        == '<div class="l stderr"><span class="ts">2026-01-01T00:00:00.123</span> x&amp;y</div>'
    )


def test_bad_regex_and_long_pattern_are_messages():
    assert "Not a valid regular expression" in parse({"q": "(a", "re": "1"}).errors[0]
    assert "200 characters" in parse({"q": "a" * 201}).errors[0]
    assert parse({"q": "a" * 200}).errors == []


def test_regex_shapes_that_explode_when_backtracking_run_in_linear_time():
    # RE2: no backtracking, so nested repeats and `.*.*` cost no more than any pattern
    # (with Python's `re`, ".*.*z" on a 20,000-character line ran for minutes).
    long_line = "a" * 19_000 + "!"
    started = time.monotonic()
    for pattern in ["(a+)+$", "(a|aa)*b", "(x*)*y", ".*.*.*z", "((ab)*c)*d", "(.*a){30}z"]:
        opts = parse({"q": pattern, "re": "1"})
        assert opts.errors == [], pattern
        assert not opts.keep(long_line), pattern
    assert time.monotonic() - started < 1
    assert parse({"q": r"(a)\1", "re": "1"}).errors  # back-references: not offered
    keep = parse({"q": r"^err(or)?: \d+", "re": "1"}).keep
    assert keep("ERROR: 42") and keep("err: 7") and not keep("error: x")
    assert keep("err: 1 \ud800")  # a lone surrogate does not break the matcher


def test_junk_options_fall_back():
    opts = parse({"tail": "99999", "since": "yesterday"})
    assert opts.tail == "100" and opts.errors
    opts = parse({"tail": "1000", "since": "2026-11-28T12:00"})
    assert opts.tail == "all" and opts.since_epoch == 1795867200


def test_filter_ignores_colour_codes():
    keep = make_filter("error", False)
    assert keep("\x1b[31mERROR\x1b[0m here") and not keep("fine")


def test_assembler_joins_partial_entries_each_with_its_timestamp():
    a = LineAssembler()
    assert list(a.feed("stdout", b"2026-01-01T00:00:00Z abc")) == []
    (line,) = a.feed("stdout", b"2026-01-01T00:00:01Z def\n")
    assert (line.time, line.text) == ("2026-01-01T00:00:00Z", "abcdef")
