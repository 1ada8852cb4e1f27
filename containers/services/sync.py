"""The container mirror: keep one row per container in line with each engine.

New containers appear unowned (dashboard admins only); vanished ones get
`removed_at` and keep their row, since history hangs on it.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from dashboard.engine import EngineError, engine, mark_host
from dashboard.models import Host

from .. import inspect
from ..models import Container

log = logging.getLogger(__name__)

MIRROR_FIELDS = [
    "name",
    "image",
    "command",
    "state",
    "status",
    "health",
    "exit_code",
    "ports",
    "created",
]
RETRY_UNREACHABLE = timedelta(seconds=15)


def sync_host(host, timeout=None):
    """Bring the mirror of one host in line with the engine (one list call).

    New containers appear unowned (admins only); vanished ones get removed_at.
    Returns the number of containers on the engine; raises EngineError.
    """
    listed_at = timezone.now()
    with engine(host, timeout=timeout) as client:
        live = client.api.containers(all=True)
    synced_at = timezone.now()
    if not host.is_reachable:
        mark_host(host, reachable=True)
    # Plain values, not model instances: this runs on every list page view that
    # re-lists a host, over every container on it.
    columns = ["pk", "docker_id", "first_seen", *MIRROR_FIELDS]
    present = Container.objects.filter(host=host, removed_at__isnull=True)
    rows = {r["docker_id"]: r for r in present.values(*columns)}
    # A row marked removed by mistake (see below) comes back when the engine lists it.
    live_ids = [item["Id"] for item in live if item["Id"] not in rows]
    if live_ids:
        back = Container.objects.filter(host=host, docker_id__in=live_ids)
        back.filter(removed_at__isnull=False).update(removed_at=None)
        rows.update({r["docker_id"]: r for r in back.values(*columns)})
    new, changed, changed_fields = [], [], set()
    for item in live:
        fields = inspect.fields_from_list_entry(item)
        if not fields["ports"] and fields["state"] != "running":
            # The list endpoint shows no ports for a stopped container; keep the
            # configured ones the mirror learnt from inspect.
            del fields["ports"]
        row = rows.pop(item["Id"], None)
        if row is None:
            new.append(Container(host=host, docker_id=item["Id"], **fields))
            continue
        diff = [k for k, v in fields.items() if row[k] != v]
        if diff:
            current = {k: row[k] for k in MIRROR_FIELDS}
            changed.append(Container(pk=row["pk"], **{**current, **fields}))
            changed_fields.update(diff)
    if new:
        Container.objects.bulk_create(new, ignore_conflicts=True)
    if changed:
        # Only the columns that changed (usually just status: "Up 5 minutes"): bulk_update
        # writes a CASE per row per column, 250 ms for 75 rows x 9 columns vs 30 ms for one.
        Container.objects.bulk_update(changed, [f for f in MIRROR_FIELDS if f in changed_fields])
    # Rows first seen after the list call (a job creating one right now) are not
    # judged by a list that could not contain them.
    gone = [r["pk"] for r in rows.values() if r["first_seen"] < listed_at]
    if gone:
        Container.objects.filter(pk__in=gone).update(removed_at=synced_at, state="removed")
    Host.objects.filter(pk=host.pk).update(last_synced=synced_at)
    host.last_synced = synced_at
    return len(live)


def refresh_hosts(hosts):
    """Sync hosts for a page; returns {host_id: error message} for those that failed.

    A host whose mirror was synced in the last MIRROR_FRESH_SECONDS is not asked
    again (the events watcher keeps it current meanwhile). Pages must stay fast
    when an engine is down: a short timeout, hosts in parallel, and a host that
    failed moments ago is not asked again until RETRY_UNREACHABLE has passed
    (its containers show as last seen).
    """
    errors, todo = {}, []
    now = timezone.now()
    fresh = timedelta(seconds=settings.MIRROR_FRESH_SECONDS)
    for host in hosts:
        recent = host.last_checked and (now - host.last_checked) < RETRY_UNREACHABLE
        if host.state == Host.State.UNREACHABLE and recent:
            errors[host.pk] = host.last_error
        elif host.is_reachable and host.last_synced and now - host.last_synced < fresh:
            continue
        else:
            todo.append(host)
    if len(todo) == 1:
        errors.update(_sync_one(todo[0]))
    elif todo:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for result in pool.map(_sync_in_thread, todo):
                errors.update(result)
    return errors


def _sync_one(host):
    try:
        sync_host(host, timeout=settings.DOCKER_PING_TIMEOUT + 2)
    except EngineError as exc:
        return {host.pk: exc.message}
    return {}


def _sync_in_thread(host):
    try:
        return _sync_one(host)
    finally:
        connection.close()  # each pool thread opened its own DB connection


def refresh_container(container, client):
    """Update one mirror row from inspect; mark it removed if the engine lost it."""
    try:
        data = client.api.inspect_container(container.docker_id)
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404:
            mark_removed(container)
            return None
        raise
    for k, v in inspect.fields_from_inspect(data).items():
        setattr(container, k, v)
    container.status = ""  # the list call's wording; next sync fills it in
    container.removed_at = None  # the engine has it, whatever the mirror thought
    container.save(
        update_fields=[
            "removed_at",
            "ports",
            "name",
            "image",
            "command",
            "state",
            "health",
            "exit_code",
            "status",
            "last_seen",
        ]
    )
    return data


def inspect_container(container, env_values=False):
    """Live inspect summary for the detail page; raises EngineError.

    Environment values only with `env_values` (readers who may act on the container).
    """
    with engine(container.host) as client:
        try:
            data = client.api.inspect_container(container.docker_id)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                mark_removed(container)
            raise
    return inspect.summarize(data, env_values=env_values)


def mark_removed(container):
    """The engine no longer has it: keep the row (history hangs on it), flag it gone."""
    container.removed_at = container.removed_at or timezone.now()
    container.state = "removed"
    Container.objects.filter(pk=container.pk, removed_at__isnull=True).update(
        removed_at=container.removed_at, state="removed"
    )
