"""Celery tasks of the stacks app: thin wrappers around services."""

from celery import shared_task

from . import polling


@shared_task
def poll_git_stacks():
    """Git stacks with polling on: deploy when their branch moved (polling.poll_due)."""
    return polling.poll_due()
