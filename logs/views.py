"""The logs page: live over the websocket, or the archive once the container is gone;
and, for either, a search of the archive by text, time range and stream."""

from collections import deque

import docker
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from containers.models import Container
from dashboard import access
from dashboard.engine import EngineError

from . import archive, params, search
from .engine_stream import open_client, read_lines
from .models import LogCursor

ARCHIVE_PAGE_LINES = 20_000  # beyond this the page says to download


def _text(lines, timestamps):
    for line in lines:
        prefix = f"{line.time} {line.stream} " if timestamps else ""
        yield f"{prefix}{line.text}\n"


def _live_lines(container):
    """The engine's log of a live container, opened before the response starts: an
    engine error is then a clear 502 rather than a 200 cut off in the middle."""
    client = open_client(container.host)
    try:
        lines = read_lines(client, container.docker_id)
        first = next(lines, None)
    except BaseException:
        client.close()
        raise

    def rest():
        try:
            if first is not None:
                yield first
                yield from lines
        finally:
            lines.close()
            client.close()

    return rest()


def _download(container, opts):
    if container.removed_at is not None:
        lines = archive.archived_lines(container)
    else:
        try:
            lines = _live_lines(container)
        except Exception as exc:
            if isinstance(exc, EngineError):
                error = exc.message
            elif isinstance(exc, docker.errors.APIError):
                error = exc.explanation or str(exc)
            else:
                error = type(exc).__name__
            return HttpResponse(
                f"The engine did not give the log: {error}",
                status=502,
                content_type="text/plain; charset=utf-8",
            )
    return _attachment(container, _text(lines, opts.timestamps))


def _attachment(container, text):
    response = StreamingHttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{container.name}.log"'
    return response


def _archive_state(container):
    """Whether the container's log is archived, and its log driver when it is not.

    A live container nobody has captured yet is captured now: that inspect is how its
    log driver is learnt, so a `none`-driver container is marked from its first view."""
    cursor = LogCursor.objects.filter(container=container).first()
    if cursor is None and container.removed_at is None:
        archive.capture_quietly(container)
        cursor = LogCursor.objects.filter(container=container).first()
    not_archived = cursor is not None and cursor.status == LogCursor.Status.NOT_ARCHIVED
    return {"not_archived": not_archived, "log_driver": cursor.driver if cursor else ""}


def _search(request, container):
    """Search the archive: a page of matching lines with their times, and "more"."""
    opts = search.parse(request.GET)
    if container.removed_at is None:
        # What a live container printed since the last periodic pass is searched too
        # (idempotent; a quiet container costs one stat).
        archive.capture_quietly(container)
    if request.GET.get("download") == "1":
        if opts.errors:
            return HttpResponse(
                " ".join(opts.errors), status=400, content_type="text/plain; charset=utf-8"
            )
        # The whole slice, in time order whatever the page's order, from its start.
        opts.order, opts.cursor = "oldest", None
        matches = (line for _pk, _i, line in search.scan(container, opts))
        return _attachment(container, _text(matches, True))
    context = {
        "c": container,
        "mode": "search",
        "sopts": opts,
        "streams": search.STREAMS,
        "orders": search.ORDERS,
        "order_label": search.ORDERS[opts.order],
        **_archive_state(container),
    }
    if not opts.errors:
        page = search.search(container, opts)
        context["page"] = page
        context["found"] = [line.html(True) for line in page.lines]
        if page.more:
            context["more_query"] = opts.query(cursor=page.more)
    return render(request, "logs/page.html", context)


def _archived_page(container, opts):
    """(lines not shown, HTML of the lines shown) of a removed container's archive.

    One pass over the chunks keeping only a bounded window: the archive of a chatty
    container can be millions of lines, which must not all sit in memory at once."""
    limit = None if (opts.since or opts.tail == "all") else int(opts.tail)
    window = deque(maxlen=min(limit or ARCHIVE_PAGE_LINES, ARCHIVE_PAGE_LINES))
    selected = 0
    for line in archive.archived_lines(container, since=opts.since):
        if opts.since and line.time < opts.since:
            continue
        if opts.keep is not None and not opts.keep(line.text):
            continue
        window.append(line)
        selected += 1
    if limit is not None:
        selected = min(selected, limit)
    return selected - len(window), [line.html(opts.timestamps) for line in window]


def logs_page(request, pk):
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team"), "logs", pk=pk
    )
    if request.GET.get("search") == "1":
        return _search(request, container)
    opts = params.parse(request.GET)
    if request.GET.get("download") == "1":
        return _download(container, opts)
    context = {"c": container, "opts": opts, "tails": list(params.TAILS), "mode": "log"}
    context.update(_archive_state(container))
    if container.removed_at is not None:
        context["cut"], context["archived"] = _archived_page(container, opts)
    return render(request, "logs/page.html", context)
