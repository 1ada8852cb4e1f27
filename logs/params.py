"""The logs page's options, validated once for the page and the websocket.

Junk never raises: an unknown tail falls back to 100, a bad time or pattern is a
message shown on the page.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from .render import FilterError, make_filter

TAILS = {"100": "100", "1000": "1000", "all": "all"}


@dataclass
class LogOptions:
    tail: str = "100"
    since: str = ""  # as typed: YYYY-MM-DDTHH:MM[:SS] (UTC)
    since_epoch: int | None = None
    timestamps: bool = True
    q: str = ""
    regex: bool = False
    keep: object = None
    errors: list = field(default_factory=list)

    def query(self):
        params = {"tail": self.tail, "ts": "1" if self.timestamps else "0"}
        if self.since_epoch is not None:
            params["since"] = self.since
        if self.q and not self.errors:
            params["q"] = self.q
            if self.regex:
                params["re"] = "1"
        return urlencode(params)


def parse(get):
    """`get`: a QueryDict or a dict of lists (parse_qs)."""

    def one(name):
        value = get.get(name) or ""
        if isinstance(value, list):
            value = value[0] if value else ""
        return value

    opts = LogOptions()
    opts.tail = TAILS.get(one("tail"), "100")
    opts.timestamps = one("ts") != "0"
    opts.regex = one("re") == "1"
    opts.q = one("q")[:1000]
    since = one("since").strip()[:32]
    if since:
        for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
            try:
                parsed = datetime.strptime(since, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
            opts.since, opts.since_epoch = since, int(parsed.timestamp())
            opts.tail = "all"
            break
        else:
            opts.errors.append("The start time must look like 2026-11-28T12:00 (UTC).")
    try:
        opts.keep = make_filter(opts.q, opts.regex)
    except FilterError as exc:
        opts.errors.append(str(exc))
        opts.keep = None
    return opts
