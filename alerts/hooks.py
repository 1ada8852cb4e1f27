"""Where alerts listen: the collector's sweeps and the events watcher's events."""

import logging

log = logging.getLogger(__name__)


def _on_sweep(sender, host_id, at=None, container_ids=(), **kwargs):
    from .evaluate import on_sweep

    try:
        on_sweep(host_id, at, container_ids)
    except Exception:  # the collector must go on whatever a rule does
        log.exception("alert evaluation after the sweep of host %s failed", host_id)


def _on_container_event(sender, host, container, event, **kwargs):
    from .evaluate import on_container_event

    on_container_event(host, container, event)


def connect():
    from containers.signals import container_event

    container_event.connect(_on_container_event, dispatch_uid="alerts.container_event")
    try:
        from monitoring.signals import sweep_done
    except ImportError:  # without the metrics app, event rules still work
        return
    sweep_done.connect(_on_sweep, dispatch_uid="alerts.sweep_done")
