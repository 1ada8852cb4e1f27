"""Image services: the only code that changes images on engines or in the mirror.

Views call `request_*` (checks access and input, queues a Job); workers run the
handlers registered with `jobs.handler`, which re-check access, call the engine,
write the audit entry and resync the host's image list. Split by job: `sync` (the
mirror and ownership), `pull`, `build`, `actions` (tag, push, remove, prune,
share), `transfer` (export, import, copy).
"""

from . import actions, build, pull, sync, transfer  # noqa: F401  (registers handlers)
from .actions import request_prune, request_push, request_remove, request_tag, share
from .build import request_build
from .pull import build_reference, request_pull
from .sync import containers_using, refresh, sync_images, usage_counts
from .transfer import export_chunks, request_copy, request_load

__all__ = [
    "build_reference",
    "containers_using",
    "export_chunks",
    "refresh",
    "request_build",
    "request_copy",
    "request_load",
    "request_prune",
    "request_pull",
    "request_push",
    "request_remove",
    "request_tag",
    "share",
    "sync_images",
    "usage_counts",
]
