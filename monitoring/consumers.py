"""Websocket: a container's figures, live, one message per collector sweep.

The socket joins the channel group of the container's host, to which the collector
publishes each sweep once (`collector.publish`): however many pages watch, the
engine is asked nothing more. Access is checked before accept and re-checked on
role changes and on a timer, as for the logs socket.
"""

import json

from channels.db import database_sync_to_async

from containers.models import Container
from dashboard import access
from dashboard.consumers import AccessCheckedConsumer

from .collector import group_name


class StatsConsumer(AccessCheckedConsumer):
    group = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.container_pk = self.scope["url_route"]["kwargs"]["pk"]
        container = await self._container()
        if container is None:
            await self.close(code=4404)
            return
        self.key = str(container.pk)
        self.group = group_name(container.host_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.start_access_watch()

    async def disconnect(self, code):
        await self.stop_access_watch()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        pass  # the page only listens

    async def metrics_sweep(self, event):
        values = event["samples"].get(self.key)
        if values is None:
            return  # another container of the host
        message = {"t": event["at"], **dict(zip(event["metrics"], values, strict=False))}
        await self.send(text_data=json.dumps(message))

    @database_sync_to_async
    def _container(self):
        user = access.fresh_user(self.scope["user"])
        if user is None:
            return None
        qs = access.restrict(user, Container.objects.all(), "stats")
        return qs.filter(pk=self.container_pk).first()

    @database_sync_to_async
    def check_access(self):
        user = access.fresh_user(self.scope["user"])
        return user is not None and (
            access.restrict(user, Container.objects.filter(pk=self.container_pk), "stats").exists()
        )
