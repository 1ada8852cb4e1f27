"""Container services: the only code that changes containers on engines or in the mirror.

Views call `request_*` (checks access, queues a Job); workers run the handlers
registered with `jobs.handler`, which re-check access (a user may have lost a
role since queuing), call the engine and write the audit entry. Split by job:
`sync` (the mirror), `actions` (start … remove, assign, reveal), `create`.
"""

from dashboard.engine import EngineError
from dashboard.services import assign_team

from .actions import ACTIONS, request_action, reveal_env, run_action
from .create import build_create_kwargs, request_create, run_create
from .sync import (
    inspect_container,
    mark_removed,
    refresh_container,
    refresh_hosts,
    sync_host,
)

__all__ = [
    "ACTIONS",
    "EngineError",
    "assign_team",
    "build_create_kwargs",
    "inspect_container",
    "mark_removed",
    "refresh_container",
    "refresh_hosts",
    "request_action",
    "request_create",
    "reveal_env",
    "run_action",
    "run_create",
    "sync_host",
]
