"""Telling open websockets that permissions changed, so they re-check at once.

Every consumer re-checks on a timer too (ACCESS_RECHECK_SECONDS); this push makes
a demotion or a removed membership take effect within a moment rather than at
the next tick. Sent after the transaction commits, so the re-check reads the
new roles.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

EVERYONE = "access.all"


def user_group(user_id):
    return f"access.user.{user_id}"


def access_changed(user_ids=None):
    """Ask the sockets of these users (or of everyone, for None) to re-check access."""
    groups = [user_group(pk) for pk in user_ids] if user_ids is not None else [EVERYONE]
    transaction.on_commit(lambda: _send(groups))


def _send(groups):
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, {"type": "access.changed"})
        except Exception:  # the timer re-check still runs; a dead Redis must not fail the change
            log.warning("could not tell %s that access changed", group, exc_info=True)
