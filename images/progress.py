"""The engine's JSON progress streams (pull, push, build, load) → job output and bars.

`docker pull` draws one bar per layer; the job page shows the same from the same
events: each layer's bar follows its download (or upload), then reads "Extracting
n%" with the bar full, so the overall bar (the sum of the layer bars) only grows.
Errors in the stream are classified so the operator reads why a pull failed:
unauthorized, not found, unreachable registry.
"""

import re

# What registries and the engine say, mapped to what an operator needs to know.
_UNAUTHORIZED = re.compile(
    r"unauthorized|authentication required|no basic auth credentials|"
    r"denied: requested access|incorrect username or password|access denied|"
    r"insufficient_scope|\b401\b",
    re.I,
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|dial tcp|context deadline exceeded|"
    r"network is unreachable|no route to host|tls: |x509: |"
    r"server gave HTTP response to HTTPS client|connection reset|EOF$|timeout",
    re.I,
)
_NOT_FOUND = re.compile(
    r"manifest unknown|not found|does not exist|name unknown|repository name not known|"
    r"no such image|unknown blob",
    re.I,
)


def classify(message):
    """ "unauthorized", "unreachable", "not found" or "" for an engine/registry error."""
    text = message or ""
    if _UNAUTHORIZED.search(text):
        return "unauthorized"
    if _UNREACHABLE.search(text):
        return "unreachable"
    if _NOT_FOUND.search(text):
        return "not found"
    return ""


_ADVICE = {
    "unauthorized": "unauthorized: the registry refused the credentials (or has none for "
    "this repository); check the registry's user name and password or token",
    "unreachable": "registry unreachable: the engine could not connect to the registry",
    "not found": "not found: the registry has no such image or tag (unknown image)",
}


def explain(verb, reference, message):
    """One sentence for a failed pull/push: why, then the registry's own words."""
    kind = classify(message)
    text = f"{verb} of {reference} failed"
    if kind:
        text += f": {_ADVICE[kind]}"
    return f"{text}. The engine said: {message.strip()}"


def _human(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


class StreamFollower:
    """Feeds decoded progress events to a job reporter; remembers errors and results."""

    def __init__(self, out):
        self.out = out
        self.error = ""
        self.image_id = ""  # build: aux.ID; load: "Loaded image ID: …"
        self.loaded = []  # load: "Loaded image: name:tag"
        self.digest = ""
        self.sizes = {}  # layer → total bytes seen
        self.lines = 0

    def feed(self, event):
        if not isinstance(event, dict):
            return
        if event.get("error") or event.get("errorDetail"):
            detail = event.get("errorDetail") or {}
            self.error = str(detail.get("message") or event.get("error") or "unknown error")
            self.out.line(f"ERROR: {self.error}")
            return
        aux = event.get("aux")
        if isinstance(aux, dict):
            if aux.get("ID"):
                self.image_id = str(aux["ID"])
            if aux.get("Digest"):
                self.digest = str(aux["Digest"])
        if "stream" in event:  # build output and `load`
            text = str(event["stream"])
            for line in text.splitlines():
                self._stream_line(line)
            return
        status = str(event.get("status") or "")
        layer = str(event.get("id") or "")
        detail = event.get("progressDetail") or {}
        if not layer or not status:
            if status:
                self.out.line(status)
                if status.startswith("Digest: "):
                    self.digest = status[len("Digest: ") :].strip()
            return
        current, total = detail.get("current"), detail.get("total")
        if status in ("Downloading", "Pushing") and total:
            self.sizes[layer] = total
            self.out.progress(layer, status=status, current=current, total=total)
        elif status == "Extracting" and total:
            size = self.sizes.get(layer) or total
            pct = int(100 * (current or 0) / total)
            self.out.progress(layer, status=f"Extracting {pct}%", current=size, total=size)
        elif status in ("Download complete", "Pull complete", "Pushed", "Verifying Checksum"):
            size = self.sizes.get(layer)
            self.out.progress(layer, status=status, current=size, total=size)
        elif status in ("Already exists", "Layer already exists"):
            self.out.progress(layer, status=status)
        elif status.startswith(("Pulling from", "The push refers")):
            self.out.line(f"{status} {layer}".strip() if status.startswith("Pulling") else status)
        elif ": digest: " in status:  # push: "<tag>: digest: sha256:… size: 1234"
            self.out.line(status)
            self.digest = status.split(": digest: ", 1)[1].split()[0]
        else:
            size = self.sizes.get(layer)
            self.out.progress(layer, status=status, current=current if size else None, total=size)

    def _stream_line(self, line):
        line = line.rstrip()
        if not line:
            return
        self.lines += 1
        if line.startswith("Loaded image ID: "):
            self.image_id = line[len("Loaded image ID: ") :].strip()
        elif line.startswith("Loaded image: "):
            self.loaded.append(line[len("Loaded image: ") :].strip())
        elif line.startswith("Successfully built "):
            self.image_id = self.image_id or line.split()[-1]
        self.out.line(line)

    def feed_all(self, events):
        for event in events:
            self.feed(event)
        return self
