"""Websocket: live job status. Access is checked on connect and on every update.

Permissions are re-read from the database (never from the scope's cached user)
on every update, when any role changes (`dashboard.live`), and on a timer, so a
demoted, removed or deactivated user's socket stops within a few seconds.
"""

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from containers.models import Container

from . import access, jobs, live
from .models import Job


class AccessCheckedConsumer(AsyncWebsocketConsumer):
    """A consumer whose `check_access()` is re-run on role changes and every few seconds.

    Subclasses call `start_access_watch()` after accepting, and implement
    `check_access()` returning True while the user may still watch.
    """

    async def start_access_watch(self):
        user_id = self.scope["user"].pk
        self.access_groups = [live.EVERYONE, live.user_group(user_id)]
        for group in self.access_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.access_timer = asyncio.ensure_future(self._recheck_every())

    async def stop_access_watch(self):
        timer = getattr(self, "access_timer", None)
        if timer is not None:
            timer.cancel()
        for group in getattr(self, "access_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _recheck_every(self):
        while True:
            await asyncio.sleep(settings.ACCESS_RECHECK_SECONDS)
            await self.access_changed({})

    async def access_changed(self, event):
        if not await self.check_access():
            await self.close(code=4403)


class JobConsumer(AccessCheckedConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.job_id = self.scope["url_route"]["kwargs"]["pk"]
        # What the page shows of the job's container: its list row or the detail header.
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.follow = (query.get("follow") or [""])[0]
        fragments = await self._render()
        if fragments is None:
            await self.close(code=4404)
            return
        self.group = f"job.{self.job_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.start_access_watch()
        # The job may have finished before the socket opened: send its state now.
        await self._send_all(fragments)

    async def disconnect(self, code):
        await self.stop_access_watch()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    @database_sync_to_async
    def check_access(self):
        user = access.fresh_user(self.scope["user"])
        return user is not None and (
            access.restrict(user, Job.objects.filter(pk=self.job_id), "view").exists()
        )

    async def job_update(self, event):
        fragments = await self._render()
        if fragments is None:  # access revoked while watching
            await self.close(code=4403)
            return
        await self._send_all(fragments)

    async def job_output(self, event):
        # Only the job page has the output block (follow=output); other pages that
        # watch a job (a container row) have nowhere to put it.
        if self.follow != "output":
            return
        await self.job_update(event)

    async def _send_all(self, fragments):
        # One message per out-of-band fragment: htmx parses a message as one HTML
        # fragment, and a <tr> that follows a <div> there is dropped by the parser.
        for html in fragments:
            await self.send(text_data=html)

    @database_sync_to_async
    def _render(self):
        # Roles as the database has them now: the user may have been demoted,
        # removed from the team or deactivated since the socket opened.
        user = access.fresh_user(self.scope["user"])
        if user is None:
            return None
        job = (
            access.restrict(user, Job.objects.select_related("container", "host"), "view")
            .filter(pk=self.job_id)
            .first()
        )
        if job is None:
            return None
        fragments = [render_to_string("dashboard/job_row.html", {"job": job, "oob": True})]
        if self.follow == "output":
            context = jobs.output_context(job, live_chars=settings.JOB_OUTPUT_LIVE_CHARS)
            fragments.append(
                render_to_string("dashboard/job_output.html", {**context, "oob": True})
            )
        container = job.container
        # Only what the page shows (an out-of-band swap without its target is an error).
        template = {
            "row": "containers/container_row.html",
            "head": "containers/detail_head.html",
        }.get(self.follow)
        if template and job.done and container is not None and access.can(user, container, "view"):
            container = Container.objects.select_related("host", "team", "owner").get(
                pk=container.pk
            )
            fragments.append(
                render_to_string(
                    template,
                    {
                        "c": container,
                        "actions": access.allowed_actions(user, container),
                        "oob": True,
                    },
                )
            )
        return fragments
