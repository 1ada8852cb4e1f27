"""Log lines as HTML: escaped first, then ANSI SGR codes turned into spans with classes.

Nothing from a log line reaches the page unescaped: the text is HTML-escaped, and
the only markup added is `<span class="…">` with class names from a fixed table.
"""

import re
from dataclasses import dataclass

import re2
from django.utils.html import escape

MAX_LINE_BYTES = 1024 * 1024  # a longer line is cut and marked
CUT_MARKER = " [… line cut at 1 MB]"
MAX_PATTERN = 200
MAX_MATCH_CHARS = 20_000  # a filter looks at this much of each line (bounds regex cost)

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b[()][A-Za-z0-9]|\x1b")
_COLOURS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]


def _classes(state):
    out = []
    if state.get("bold"):
        out.append("ansi-bold")
    if state.get("italic"):
        out.append("ansi-italic")
    if state.get("underline"):
        out.append("ansi-underline")
    if state.get("fg"):
        out.append(f"ansi-fg-{state['fg']}")
    if state.get("bg"):
        out.append(f"ansi-bg-{state['bg']}")
    return " ".join(out)


def _apply(state, params):
    codes = [int(p) if p.isdigit() else 0 for p in (params.split(";") if params else ["0"])]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            state.clear()
        elif code == 1:
            state["bold"] = True
        elif code == 3:
            state["italic"] = True
        elif code == 4:
            state["underline"] = True
        elif code == 22:
            state.pop("bold", None)
        elif code == 23:
            state.pop("italic", None)
        elif code == 24:
            state.pop("underline", None)
        elif 30 <= code <= 37:
            state["fg"] = _COLOURS[code - 30]
        elif 90 <= code <= 97:
            state["fg"] = "bright-" + _COLOURS[code - 90]
        elif code == 39:
            state.pop("fg", None)
        elif 40 <= code <= 47:
            state["bg"] = _COLOURS[code - 40]
        elif 100 <= code <= 107:
            state["bg"] = "bright-" + _COLOURS[code - 100]
        elif code == 49:
            state.pop("bg", None)
        elif code in (38, 48):  # 256-colour / truecolour: skipped, not rendered
            if i + 1 < len(codes) and codes[i + 1] == 5:
                i += 2
            elif i + 1 < len(codes) and codes[i + 1] == 2:
                i += 4
        i += 1


def ansi_to_html(text):
    """Escaped HTML for one line, its SGR colours as spans; other escapes dropped."""
    out, state, pos = [], {}, 0
    for match in _SGR.finditer(text):
        chunk = _OTHER_ESCAPES.sub("", text[pos : match.start()])
        if chunk:
            out.append(_wrap(escape(chunk), state))
        _apply(state, match.group(1))
        pos = match.end()
    chunk = _OTHER_ESCAPES.sub("", text[pos:])
    if chunk:
        out.append(_wrap(escape(chunk), state))
    return "".join(out)


def _wrap(html, state):
    classes = _classes(state)
    return f'<span class="{classes}">{html}</span>' if classes else html


def strip_ansi(text):
    return _OTHER_ESCAPES.sub("", _SGR.sub("", text))


@dataclass
class Line:
    stream: str  # "stdout" | "stderr"
    time: str  # RFC 3339 from the engine, "" if unknown
    text: str  # decoded (invalid UTF-8 replaced), without the newline

    def html(self, timestamps):
        stamp = f'<span class="ts">{escape(self.time[:23])}</span> ' if timestamps else ""
        return f'<div class="l {self.stream}">{stamp}{ansi_to_html(self.text)}</div>'


class FilterError(ValueError):
    pass


def make_filter(text, is_regex):
    """A predicate on a line's text, or None for no filter; FilterError with a message."""
    text = text or ""
    if not text:
        return None
    if len(text) > MAX_PATTERN:
        raise FilterError(f"The filter is limited to {MAX_PATTERN} characters.")
    if not is_regex:
        needle = text.casefold()
        return lambda line: needle in strip_ansi(line[:MAX_MATCH_CHARS]).casefold()
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a bad pattern is the user's message, not a server log line
    try:
        pattern = re2.compile(text, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise FilterError(f"Not a valid regular expression: {reason}") from None

    def keep(line):
        text = strip_ansi(line[:MAX_MATCH_CHARS])
        try:
            return pattern.search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate: RE2 matches UTF-8 only
            return pattern.search(text.encode("utf-8", "replace").decode()) is not None

    return keep


def decode(data, cut):
    text = data.decode("utf-8", errors="replace")
    return text + CUT_MARKER if cut else text


class LineAssembler:
    """Turn the engine's frames (one per log entry, long lines split in 16 KB parts,
    each part with its own timestamp) into whole lines, cut at MAX_LINE_BYTES."""

    def __init__(self, timestamps=True):
        self.timestamps = timestamps
        self.parts = {}  # stream -> [time, bytearray, cut]

    def feed(self, stream, data):
        """Yield the Lines completed by this frame."""
        while data:
            head, nl, rest = data.partition(b"\n")
            yield from self._part(stream, head, bool(nl))
            data = rest

    def _part(self, stream, data, ends):
        entry = self.parts.get(stream)
        stamp = ""
        if self.timestamps and data[:1].isdigit():
            maybe, sep, body = data.partition(b" ")
            if sep and b"T" in maybe[:11]:
                stamp, data = maybe.decode("ascii", "replace"), body
        if entry is None:
            entry = self.parts[stream] = [stamp, bytearray(), False]
        if not entry[2]:
            room = MAX_LINE_BYTES - len(entry[1])
            if len(data) > room:
                entry[1] += data[:room]
                entry[2] = True
            else:
                entry[1] += data
        if ends:
            del self.parts[stream]
            yield Line(stream, entry[0], decode(bytes(entry[1]), entry[2]))

    def flush(self):
        for stream, entry in list(self.parts.items()):
            yield Line(stream, entry[0], decode(bytes(entry[1]), entry[2]))
        self.parts.clear()
