"""Celery tasks of the alerts app (thin): the delivery sweep and the rule tick."""

from celery import shared_task

from . import evaluate, outbox


@shared_task(acks_late=True)
def deliver_due():
    """Send due alert emails; kicked on commit and swept by beat (a lost message loses nothing)."""
    return {"sent": outbox.deliver_due()}


@shared_task
def alert_tick():
    evaluate.tick()
