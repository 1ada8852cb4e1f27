"""Session recordings in asciicast v2 form: a header, then [t, "i"|"o", data] events.

Bounded: past `CONSOLE_RECORDING_MAX_BYTES` of data the recording stops (the session
goes on) and says so in a last event; stored gzip'ed.
"""

import codecs
import gzip
import json
import threading
import time

from django.conf import settings

TRUNCATED = "\r\n[dockyard: recording size limit reached; the rest was not recorded]\r\n"


def max_bytes():
    return getattr(settings, "CONSOLE_RECORDING_MAX_BYTES", 1_000_000)


class Recorder:
    def __init__(self, cols, rows, command, title=""):
        self.started = time.monotonic()
        self.header = {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(time.time()),
            "command": command,
            "title": title,
        }
        self.events = []
        self.size = 0
        self.truncated = False
        self._lock = threading.Lock()
        # Output arrives in chunks that may split a UTF-8 character.
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")("replace") for kind in ("i", "o")
        }

    def add(self, kind, data):
        """Record `data` (bytes or str) typed ("i") or shown ("o") now."""
        with self._lock:
            if self.truncated:
                return
            if isinstance(data, bytes):
                data = self._decoders[kind].decode(data)
            if not data:
                return
            at = round(time.monotonic() - self.started, 6)
            if self.size + len(data) > max_bytes():
                self.truncated = True
                self.events.append([at, "o", TRUNCATED])
                return
            self.size += len(data)
            self.events.append([at, kind, data])

    def resize(self, cols, rows):
        with self._lock:
            if not self.truncated:
                at = round(time.monotonic() - self.started, 6)
                self.events.append([at, "r", f"{cols}x{rows}"])

    def cast(self):
        with self._lock:
            lines = [json.dumps(self.header)] + [json.dumps(e) for e in self.events]
        return "\n".join(lines) + "\n"

    def gzipped(self):
        return gzip.compress(self.cast().encode(), compresslevel=6)
