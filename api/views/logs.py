"""GET /api/v1/containers/<id>/logs/ — the log as text/plain, streamed.

The logs page's options (tail, since, ts, q, re) and `download=1`, plus `follow=1`
to keep streaming new lines (at most API_LOG_FOLLOW_SECONDS). A live container's
log comes from the engine, a removed one's from the archive, as on the page.
"""

import itertools
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers

from containers.models import Container
from dashboard import access
from dashboard.engine import translate
from logs import archive, params
from logs.engine_stream import FOLLOW_TIMEOUT, _shutdown, log_frames, open_client
from logs.render import LineAssembler

from .base import ApiView, ErrorSerializer

BATCH = 500  # lines handed from the reading thread to the response at a time


class PlainTextRenderer(renderers.BaseRenderer):
    """Lets `Accept: text/plain` through content negotiation; errors stay one sentence."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "error" in data:
            return f"{data['error']}\n".encode()
        return str(data).encode()


class EngineLog:
    """Lines of a live container's log from the engine; `follow` keeps reading.

    The socket is shut down when the response ends, is cancelled (the client went
    away) or has followed for API_LOG_FOLLOW_SECONDS, so no reader thread outlives it.
    """

    def __init__(self, container, opts, follow):
        # Following, a quiet container is not an error: the long read timeout of the
        # logs page's reader; otherwise the engine's usual one.
        timeout = FOLLOW_TIMEOUT if follow else settings.DOCKER_TIMEOUT
        tail = "all" if opts.since_epoch is not None else opts.tail
        self.client = None
        try:
            self.client = open_client(container.host, timeout=timeout)
            self.res, self.sock, self.frames = log_frames(
                self.client,
                container.docker_id,
                follow=follow,
                tail=tail,
                since=opts.since_epoch,
            )
        except Exception as exc:
            if self.client is not None:
                self.client.close()
            raise translate(container.host, exc) from exc
        self.timer, self.stopped = None, False
        if follow:
            self.timer = threading.Timer(settings.API_LOG_FOLLOW_SECONDS, self.stop)
            self.timer.daemon = True
            self.timer.start()

    def lines(self):
        assembler = LineAssembler()
        try:
            for stream, data in self.frames:
                yield from assembler.feed(stream, data)
            yield from assembler.flush()
        except Exception:
            if not self.stopped:
                raise
            yield from assembler.flush()  # stopped on purpose: the stream just ends
        finally:
            self.close()

    def stop(self):
        self.stopped = True
        _shutdown(self.sock)

    def close(self):
        if self.timer:
            self.timer.cancel()
        self.res.close()
        self.client.close()


def _archived(container, opts):
    keep = opts.keep or (lambda text: True)
    lines = (ln for ln in archive.archived_lines(container) if keep(ln.text))
    if opts.since:
        return (ln for ln in lines if ln.time >= opts.since)
    if opts.tail != "all":
        return iter(list(lines)[-int(opts.tail) :])
    return lines


def _still_allowed(request, container):
    """May the request's user (through its token) still read this container's log?
    Read from the database now: roles, the account and the token may have changed."""
    user = access.fresh_user(request.user)
    if user is None:
        return False
    token = access.token_of(request.user)
    if token is not None:
        token = type(token).objects.filter(pk=token.pk).first()
        if token is None or not token.usable:
            return False
        access.narrow(user, token)
    return access.restrict(user, Container.objects.filter(pk=container.pk), "logs").exists()


def _rechecked(lines, allowed):
    """A followed log ends once its reader may no longer read it: a demoted or removed
    user, a deactivated account or a revoked token stops receiving within
    ACCESS_RECHECK_SECONDS of a line, as the websockets do (not at the follow limit)."""
    checked = time.monotonic()
    for line in lines:
        if time.monotonic() - checked >= settings.ACCESS_RECHECK_SECONDS:
            if not allowed():
                return
            checked = time.monotonic()
        yield line


def _text(lines, timestamps):
    for line in lines:
        prefix = f"{line.time} {line.stream} " if timestamps else ""
        yield f"{prefix}{line.text}\n"


async def _stream(chunks, on_close=None, batch=BATCH):
    """Hand a blocking generator's output to the ASGI response `batch` lines at a time
    (1 when following: a line must not wait for the next ones), in the request's own
    thread (the ORM stays in one thread), never all in memory."""
    pull = sync_to_async(lambda: "".join(itertools.islice(chunks, batch)))
    try:
        while True:
            text = await pull()
            if not text:
                return
            yield text
    finally:
        if on_close:
            on_close()  # unblocks a follow read at once (the client went away)
        await sync_to_async(chunks.close)()


class ContainerLogs(ApiView):
    queryset = Container.objects.select_related("host", "team")
    renderer_classes = [renderers.JSONRenderer, PlainTextRenderer]
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("tail", str, enum=list(params.TAILS), description="Last N lines"),
            OpenApiParameter("since", str, description="From this time (UTC), 2026-11-28T12:00"),
            OpenApiParameter("ts", str, enum=["0", "1"], description="Timestamps (default 1)"),
            OpenApiParameter("q", str, description="Keep lines containing this"),
            OpenApiParameter("re", str, enum=["1"], description="q is a regular expression"),
            OpenApiParameter("follow", str, enum=["1"], description="Keep streaming new lines"),
            OpenApiParameter("download", str, enum=["1"], description="As an attachment"),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Log lines"),
            400: ErrorSerializer,
            404: ErrorSerializer,
            502: ErrorSerializer,
        },
    )
    def get(self, request, pk):
        """The container's log: `<time> <stream> <text>` lines (`ts=0`: text only)."""
        container = self.get_object("logs")
        query = request.query_params
        opts = params.parse(query)
        if opts.errors:
            raise exceptions.ValidationError({"query": opts.errors})
        follow = query.get("follow") == "1"
        on_close = None
        if container.removed_at is not None:
            lines = _archived(container, opts)
        else:
            source = EngineLog(container, opts, follow)  # EngineError: a 502, said once
            keep = opts.keep or (lambda text: True)
            lines = (ln for ln in source.lines() if keep(ln.text))
            on_close = source.stop
            if follow:
                lines = _rechecked(lines, lambda: _still_allowed(request, container))
        response = StreamingHttpResponse(
            _stream(_text(lines, opts.timestamps), on_close, batch=1 if follow else BATCH),
            content_type="text/plain; charset=utf-8",
        )
        response["X-Accel-Buffering"] = "no"  # a proxy must not hold a followed log back
        if query.get("download") == "1":
            response["Content-Disposition"] = f'attachment; filename="{container.name}.log"'
        return response
