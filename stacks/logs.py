"""Interleaved logs of a stack's containers: the last lines of each, merged by time.

Live following of one container stays with the logs app (its page is linked
from each line's container); this page is the stack-wide view.
"""

from dashboard.engine import engine
from logs.render import strip_ansi


def interleaved(host, members, tail):
    """[(timestamp text, service, container, line)] sorted by time, at most `tail` lines."""
    merged = []
    with engine(host) as client:
        for member in members:
            c = member.container
            try:
                raw = client.api.logs(
                    c.docker_id, stdout=True, stderr=True, timestamps=True, tail=tail
                )
            except Exception as exc:  # one container gone must not hide the others
                if getattr(exc, "status_code", None) == 404:
                    continue
                raise
            for line in raw.decode("utf-8", "replace").splitlines():
                stamp, _, text = line.partition(" ")
                merged.append((stamp, member.service, c, strip_ansi(text)))
    merged.sort(key=lambda item: item[0])
    return merged[-tail:]
