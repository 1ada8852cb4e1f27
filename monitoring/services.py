"""Changes to how metrics are collected (dashboard admins; audited)."""

from dashboard import access
from dashboard.audit import record

from .models import Collection


class BadMode(ValueError):
    pass


def set_collection_mode(actor, host, mode):
    """Set how `host` is read: "auto" (try cgroup files, else the stats API) or
    "stats-api" (always the API, e.g. when the cgroup figures look wrong). The method
    is decided again at the next sweep."""
    if not actor.is_system:
        access.require(actor.user, host, "manage")
    if mode not in Collection.Mode.values:
        raise BadMode(
            f"Unknown collection mode {mode!r}: choose {', '.join(Collection.Mode.values)}."
        )
    collection, _ = Collection.objects.get_or_create(host=host)
    before = collection.mode
    collection.mode = mode
    collection.method = ""
    collection.reason = "to be decided at the next sweep"
    collection.save(update_fields=["mode", "method", "reason"])
    record(
        actor,
        "host.metrics_mode",
        host=host,
        target=host,
        params={"mode": mode, "before": before},
    )
    return collection
