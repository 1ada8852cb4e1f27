"""Signals other apps listen to.

`container_event` is sent by the events watcher (containers.events.handle_event) for
each Docker event of a mirrored container, after its row was refreshed, with kwargs
`host`, `container` (the mirror row) and `event` (the engine's event dict).
Receivers run in the watcher's thread: keep them short (the alerts app writes a
state row and an outbox row; delivery happens elsewhere).
"""

from django.dispatch import Signal

container_event = Signal()
