"""Websocket: a container's log, live. Access checked before accept and re-checked.

The engine is read in a thread (`engine_stream.Follower`) into a bounded queue;
every FRAME_SECONDS the lines queued so far (at most FRAME_LINES) go out as one
HTML fragment appended to the log pane (htmx ws, out-of-band `beforeend`). When
the viewer falls behind, lines are dropped and "N lines skipped" is sent instead.

Outages: the follower retries the engine by itself (see `Follower`); its status
("Engine unreachable — reconnecting…") replaces the page's status line whenever it
changes. Every frame also carries the time of its last line (`#log-after`, in ns);
when the websocket itself reconnects, the page passes it back as `after=` and the
log resumes from there with no line twice.
"""

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.utils.html import escape

from containers.models import Container
from dashboard import access
from dashboard.consumers import AccessCheckedConsumer

from . import params
from .engine_stream import Follower

FRAME_SECONDS = 0.1
FRAME_LINES = 500


def fragment(lines_html):
    return f'<div id="log-lines" hx-swap-oob="beforeend">{"".join(lines_html)}</div>'


def note(text, kind="note"):
    return f'<div class="l {kind}">{escape(text)}</div>'


def status_line(text):
    """The page's status line (replaced out of band); empty while the log is live."""
    kind = "log-status warn" if text else "log-status"
    return f'<p id="log-status" class="{kind}" role="status" hx-swap-oob="true">{escape(text)}</p>'


def after_marker(ns):
    """Where the page is: the time of the last line it received, for a reconnect."""
    return f'<span id="log-after" data-after="{int(ns)}" hidden hx-swap-oob="true"></span>'


def parse_after(query):
    """The `after` parameter: nanoseconds since the epoch, or None (junk is ignored)."""
    value = (query.get("after") or [""])[0]
    return int(value) if value.isdigit() and len(value) <= 20 else None


class LogConsumer(AccessCheckedConsumer):
    follower = None
    pump = None

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
        if container.removed_at is not None:
            await self.close(code=4410)  # the page serves the archive instead
            return
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        opts = params.parse(query)
        if opts.errors:
            await self.close(code=4400)
            return
        await self.accept()
        await self.start_access_watch()
        self.follower = Follower(
            container.host,
            container.docker_id,
            tail=opts.tail,
            since=opts.since_epoch,
            keep=opts.keep,
            timestamps=opts.timestamps,
            after_ns=parse_after(query),
        )
        self.follower.start()
        self.pump = asyncio.ensure_future(self._pump())

    async def disconnect(self, code):
        await self.stop_access_watch()
        if self.pump is not None:
            self.pump.cancel()
        if self.follower is not None:
            self.follower.stop()

    async def access_changed(self, event):
        if not await self.check_access():
            if self.follower is not None:
                self.follower.stop()
            await self.close(code=4403)

    @database_sync_to_async
    def _container(self):
        user = access.fresh_user(self.scope["user"])
        if user is None:
            return None
        qs = access.restrict(user, Container.objects.select_related("host"), "logs")
        return qs.filter(pk=self.container_pk).first()

    @database_sync_to_async
    def check_access(self):
        user = access.fresh_user(self.scope["user"])
        return user is not None and (
            access.restrict(user, Container.objects.filter(pk=self.container_pk), "logs").exists()
        )

    async def _pump(self):
        follower = self.follower
        status, sent_ns = "", follower.taken_ns
        while True:
            ended = follower.ended.is_set()  # read before taking: no line is left behind
            lines, skipped = follower.take(FRAME_LINES)
            if skipped:
                lines.append(note(f"{skipped} lines skipped (the view fell behind)", "skipped"))
            parts = [fragment(lines)] if lines else []
            if follower.taken_ns is not None and follower.taken_ns != sent_ns:
                sent_ns = follower.taken_ns
                parts.append(after_marker(sent_ns))
            if follower.status != status:
                status = follower.status
                parts.append(status_line(status))
                if status:
                    parts.append(fragment([note(f"— {status} —")]))
            if parts:
                await self.send(text_data="".join(parts))
            if ended and follower.queue.empty():
                if follower.error:
                    await self.send(text_data=fragment([note(follower.error, "error")]))
                else:
                    await self.send(text_data=fragment([note("— end of the log —")]))
                return
            if len(lines) < FRAME_LINES:
                await asyncio.sleep(FRAME_SECONDS)
