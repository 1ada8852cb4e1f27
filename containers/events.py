"""The events watcher: follow each host's event stream and keep the mirror true.

One thread per host; a host that drops its stream is retried with backoff and
marked unreachable meanwhile. Every event triggers a resync of that one
container (inspect), which is cheaper and more robust than interpreting each
event type.
"""

import logging
import threading
import time

from django.db import close_old_connections, connection

from dashboard.engine import EngineError, HostUnreachable, engine
from dashboard.models import Host

from . import services
from .models import Container
from .signals import container_event

log = logging.getLogger(__name__)
STREAM_SECONDS = 240
# How far back a new stream may replay missed events (the engine keeps a bounded
# buffer anyway); after a longer outage the resync alone catches up.
MAX_REPLAY_SECONDS = 600


def watch_host(host_id, stop: threading.Event, since=None):
    try:
        _watch(host_id, stop, since)
    finally:
        connection.close()  # this thread's own connection, not left to the server


def _watch(host_id, stop, since=None):
    """Follow a host's container events. `since` (unix seconds): replay from there.

    Each new stream starts where the last one stopped (its `until`, or the last event
    seen before an error), so an event that happens between two streams or during a
    short outage is replayed by the engine rather than lost: alert rules depend on
    seeing every `die` and `oom`. Handlers are idempotent, so the one event at the
    seam that may come twice does no harm.
    """
    backoff = 1
    while not stop.is_set():
        close_old_connections()
        host = Host.objects.filter(pk=host_id).first()
        if host is None:
            return
        if since is not None and time.time() - since > MAX_REPLAY_SECONDS:
            since = None  # too old to replay: the resync below is all we can do
        try:
            services.sync_host(host)  # catch up on what happened while we were away
            # Streams end by themselves every few minutes (`until`), so an idle
            # engine never trips the read timeout and each loop resyncs once.
            until = int(time.time()) + STREAM_SECONDS
            with engine(host, timeout=STREAM_SECONDS + 60) as client:
                stream = client.api.events(
                    decode=True,
                    filters={"type": "container"},
                    since=f"{since:.9f}" if since is not None else None,
                    until=until,
                )
                backoff = 1
                for event in stream:
                    if stop.is_set():
                        stream.close()
                        return
                    handle_event(host, client, event)
                    if event.get("timeNano"):
                        since = event["timeNano"] / 1e9
            # The stream covered everything up to its end (or up to now, if the engine
            # closed it early, as a restarting engine does).
            since = min(until, time.time())
        except HostUnreachable as exc:
            log.warning("%s", exc.message)
        except EngineError as exc:
            log.warning("host %s: %s", host.name, exc.message)
        except Exception:
            log.exception("events watcher for host %s crashed; restarting", host_id)
        stop.wait(backoff)
        backoff = min(backoff * 2, 30)


def handle_event(host, client, event):
    docker_id = event.get("id") or (event.get("Actor") or {}).get("ID")
    if not docker_id:
        return
    close_old_connections()
    container = Container.objects.filter(host=host, docker_id=docker_id).first()
    if container is None:
        if event.get("Action") in ("create", "start", "rename"):
            services.sync_host(host)
        return
    if event.get("Action") == "die":
        # Archive the log now: a `docker rm -f` deletes the file right after this event.
        from logs.archive import capture_quietly

        capture_quietly(container, client)
    try:
        services.refresh_container(container, client)
    except Exception:
        log.warning(
            "could not refresh %s after %s", docker_id[:12], event.get("Action"), exc_info=True
        )
    # Listeners (alert rules) get every event; one that fails must not stop the watcher.
    for receiver, result in container_event.send_robust(
        sender=Container, host=host, container=container, event=event
    ):
        if isinstance(result, Exception):
            log.error("%s failed on %s", receiver, event.get("Action"), exc_info=result)


def run(poll_hosts_every=30):
    """Watch every host until interrupted; picks up hosts added later."""
    stops, threads = {}, {}
    try:
        while True:
            close_old_connections()
            ids = set(Host.objects.values_list("pk", flat=True))
            for host_id in ids - threads.keys():
                stops[host_id] = threading.Event()
                threads[host_id] = threading.Thread(
                    target=watch_host,
                    args=(host_id, stops[host_id]),
                    daemon=True,
                    name=f"events-{host_id}",
                )
                threads[host_id].start()
            for host_id in set(threads) - ids:
                stops.pop(host_id).set()
                threads.pop(host_id)
            time.sleep(poll_hosts_every)
    except KeyboardInterrupt:
        pass
    finally:
        for stop in stops.values():
            stop.set()
