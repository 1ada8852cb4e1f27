"""Git stacks that poll their branch every N minutes instead of (or besides) a webhook."""

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from dashboard import jobs
from dashboard.audit import Actor

from . import git
from .models import Stack

log = logging.getLogger(__name__)


def poll_due(now=None):
    """Queue a deploy for each due git stack whose branch head is not the deployed commit."""
    now = now or timezone.now()
    queued = []
    candidates = Stack.objects.present().filter(source=Stack.Source.GIT, poll_minutes__gt=0)
    for stack in candidates.select_related("host", "owner"):
        due = (
            stack.last_polled is None
            or stack.last_polled + timedelta(minutes=stack.poll_minutes) <= now
        )
        if not due:
            continue
        claimed = Stack.objects.filter(
            Q(last_polled__isnull=True) | Q(last_polled=stack.last_polled), pk=stack.pk
        ).update(last_polled=now)
        if not claimed:
            continue
        try:
            head = git.remote_head(
                stack.git_url, stack.git_branch, stack.git_username, stack.git_password
            )
        except git.GitError as exc:
            log.warning("polling stack %s: %s", stack.pk, exc)
            continue
        if head and head != stack.git_commit and not stack.running_job:
            job = jobs.enqueue(
                Actor(stack.owner, None),
                "stack.deploy",
                host=stack.host,
                target=f"stack {stack.name}",
                params={"stack_id": stack.pk, "action": "poll", "pushed_commit": head},
            )
            queued.append(job.pk)
    return queued
