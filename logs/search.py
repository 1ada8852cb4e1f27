"""Search of the log archive by text (or RE2 regular expression), time range and stream.

Reads one chunk at a time, in capture order, after choosing the chunks from their
time index (first/last time, read without the data): a chunk entirely outside the
range is never decompressed, and the archive is never all in memory. A page of
results ends with a cursor (chunk id, line index) from which the next page goes on,
so equal timestamps never repeat or lose a line between pages.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from .engine_stream import time_ns
from .models import LogChunk
from .render import FilterError, make_filter

PAGE_LINES = 200
MAX_SCAN_LINES = 1_000_000  # per request: a search with few matches continues from here
MARGIN_NS = 1_000_000_000  # stdout and stderr may be a little out of order within a chunk
STREAMS = {"": "both", "stdout": "stdout", "stderr": "stderr"}
ORDERS = {"newest": "newest first", "oldest": "oldest first"}
_CURSOR = re.compile(r"^(\d{1,18})\.(\d{1,9})$")
_FORMATS = (("%Y-%m-%dT%H:%M", timedelta(minutes=1)), ("%Y-%m-%dT%H:%M:%S", timedelta(seconds=1)))


@dataclass
class SearchOptions:
    q: str = ""
    regex: bool = False
    keep: object = None
    start: str = ""  # as typed, YYYY-MM-DDTHH:MM[:SS] UTC
    end: str = ""
    start_ns: int | None = None  # first nanosecond of the range
    end_ns: int | None = None  # last nanosecond: "to 12:05" includes all of 12:05
    stream: str = ""
    order: str = "newest"
    cursor: tuple | None = None  # (chunk pk, line index) of the last line of the previous page
    errors: list = field(default_factory=list)

    def query(self, cursor=None, download=False):
        params = {"search": "1", "q": self.q, "start": self.start, "end": self.end}
        if self.regex:
            params["re"] = "1"
        params.update(stream=self.stream, order=self.order)
        if cursor:
            params["cursor"] = f"{cursor[0]}.{cursor[1]}"
        if download:
            params["download"] = "1"
        return urlencode({k: v for k, v in params.items() if v})


def _parse_time(text, label, errors):
    """(as typed, first ns, last ns) of a minute or a second typed in UTC."""
    text = text.strip()[:32].replace(" ", "T")
    if not text:
        return "", None, None
    for fmt, span in _FORMATS:
        try:
            at = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        try:
            first = int(at.timestamp()) * 1_000_000_000
            last = int((at + span).timestamp()) * 1_000_000_000 - 1
        except (OverflowError, ValueError):  # year 9999 + a minute
            errors.append(f"The {label} time is out of range.")
            return "", None, None
        return text, first, last
    errors.append(f"The {label} time must look like 2026-11-28T12:00 or 2026-11-28T12:00:30 (UTC).")
    return "", None, None


def parse(get):
    """SearchOptions from a QueryDict; junk is a message, never an exception."""

    def one(name):
        value = get.get(name) or ""
        return value[0] if isinstance(value, list) else value

    opts = SearchOptions()
    opts.q = one("q")[:1000]
    opts.regex = one("re") == "1"
    opts.start, opts.start_ns, _ = _parse_time(one("start"), "“from”", opts.errors)
    opts.end, _, opts.end_ns = _parse_time(one("end"), "“to”", opts.errors)
    if opts.start_ns is not None and opts.end_ns is not None and opts.start_ns > opts.end_ns:
        opts.errors.append("The “from” time is after the “to” time.")
    opts.stream = one("stream") if one("stream") in STREAMS else ""
    opts.order = one("order") if one("order") in ORDERS else "newest"
    match = _CURSOR.match(one("cursor"))
    if match:
        opts.cursor = (int(match.group(1)), int(match.group(2)))
    try:
        opts.keep = make_filter(opts.q, opts.regex)
    except FilterError as exc:
        opts.errors.append(str(exc))
    return opts


def _chunks(container, opts):
    """Primary keys of the chunks that may hold lines in range, in reading order."""
    newest = opts.order == "newest"
    index = LogChunk.objects.filter(container=container)
    if opts.cursor is not None:
        index = index.filter(**{"pk__lte" if newest else "pk__gte": opts.cursor[0]})
    index = index.order_by("-pk" if newest else "pk").values_list("pk", "first_time", "last_time")
    for pk, first, last in index.iterator(chunk_size=2000):
        last_ns, first_ns = time_ns(last), time_ns(first)
        if opts.start_ns is not None and last_ns is not None:
            if last_ns < opts.start_ns - MARGIN_NS:
                continue
        if opts.end_ns is not None and first_ns is not None:
            if first_ns > opts.end_ns + MARGIN_NS:
                continue
        yield pk


def _matches(line, opts):
    if opts.stream and line.stream != opts.stream:
        return False
    if opts.start_ns is not None or opts.end_ns is not None:
        at = time_ns(line.time)
        if at is None:
            return False  # a line of unknown time is in no range
        if opts.start_ns is not None and at < opts.start_ns:
            return False
        if opts.end_ns is not None and at > opts.end_ns:
            return False
    return opts.keep is None or opts.keep(line.text)


def scan(container, opts, max_scan=None):
    """Yield (chunk pk, line index, Line) of the matching lines, in the chosen order,
    after the cursor. With `max_scan`, yields (pk, index, time) once that many lines
    were looked at (the caller may stop there and continue later from it)."""
    newest = opts.order == "newest"
    looked = 0
    for pk in _chunks(container, opts):
        # One chunk's data at a time (at most CHUNK_LINES lines); a chunk removed by
        # retention meanwhile is skipped.
        data = LogChunk.objects.filter(pk=pk).only("data").first()
        if data is None:
            continue
        lines = data.lines()
        positions = range(len(lines) - 1, -1, -1) if newest else range(len(lines))
        for i in positions:
            if opts.cursor is not None and pk == opts.cursor[0]:
                if (newest and i >= opts.cursor[1]) or (not newest and i <= opts.cursor[1]):
                    continue
            looked += 1
            if _matches(lines[i], opts):
                yield pk, i, lines[i]
            elif max_scan is not None and looked >= max_scan:
                yield pk, i, lines[i].time
                return


@dataclass
class Page:
    lines: list  # Lines, in the chosen order
    more: tuple | None  # cursor of the next page, or None: nothing further matches
    scan_cut: bool = False  # stopped after MAX_SCAN_LINES with the page not full
    last_time: str = ""  # the time reached when the scan was cut


def search(container, opts, limit=PAGE_LINES, max_scan=MAX_SCAN_LINES):
    """A page of at most `limit` matching lines and where the next page starts."""
    found, more, cursor = [], None, None
    for pk, i, line in scan(container, opts, max_scan):
        if isinstance(line, str):  # looked at max_scan lines: the page ends, to be continued
            return Page(found, (pk, i), scan_cut=True, last_time=line)
        if len(found) == limit:  # one more match exists: the next page starts after ours
            more = cursor
            break
        found.append(line)
        cursor = (pk, i)
    return Page(found, more)
