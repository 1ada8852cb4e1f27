"""Websocket: live job status. Access is checked on connect and on every update."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from containers.models import Container

from . import access
from .models import Job


class JobConsumer(AsyncWebsocketConsumer):
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
        # The job may have finished before the socket opened: send its state now.
        await self._send_all(fragments)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_update(self, event):
        fragments = await self._render()
        if fragments is None:  # access revoked while watching
            await self.close(code=4403)
            return
        await self._send_all(fragments)

    async def _send_all(self, fragments):
        # One message per out-of-band fragment: htmx parses a message as one HTML
        # fragment, and a <tr> that follows a <div> there is dropped by the parser.
        for html in fragments:
            await self.send(text_data=html)

    @database_sync_to_async
    def _render(self):
        user = self.scope["user"]
        # The user may have been deactivated since the socket opened.
        user.refresh_from_db()
        access.forget(user)
        if not user.is_active:
            return None
        job = (
            access.restrict(user, Job.objects.select_related("container", "host"), "view")
            .filter(pk=self.job_id)
            .first()
        )
        if job is None:
            return None
        fragments = [render_to_string("dashboard/job_row.html", {"job": job, "oob": True})]
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
