"""Search of the log archive (`?search=1`): text or RE2 pattern, a from/to time range,
stdout/stderr, pages with a cursor; for a live container and after `docker rm -f`."""

import html
import re
import subprocess
import time
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from containers.services import sync_host
from logs import search
from tests.logs.support import parse, shell
from tests.logs.test_archive import wait_for_output

pytestmark = [pytest.mark.live]

MORE = re.compile(r'<a href="\?([^"]+)" role="button" class="secondary btn-sm">More…</a>')


def next_second():
    """Sleep into the next whole second of the clock the engine stamps lines with; its
    time, as the search form takes it (UTC)."""
    time.sleep(1 - time.time() % 1 + 0.02)
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def found(client, url, query):
    """(stream, text) of the result lines, and the next page's query or None."""
    body = client.get(url + "?search=1&" + query).content.decode()
    pane = body.partition('id="log-lines"')[2].partition("</div>\n")[0]
    more = MORE.search(body)
    return (
        [(s, t.split(" ", 1)[1]) for s, t in parse(pane)],
        (html.unescape(more.group(1)) if more else None),
        body,
    )


def all_pages(client, url, query):
    lines, pages = [], 0
    while query is not None:
        page, query, _ = found(client, url, query)
        lines += [t for _, t in page]
        pages += 1
    return lines, pages


def test_search_by_text_regex_range_and_stream_live_then_removed(
    login, cast, make_container, local_host
):
    # Three bursts, a whole second apart, so a range in seconds holds exactly the middle.
    c = make_container(
        cast.owner,
        cast.alpha,
        command=shell(
            "echo a-1; echo a-2; echo B-2 early; "
            "while [ ! -e /b ]; do sleep 0.02; done; "
            "for i in 1 2 3 4 5; do echo b-$i; done; echo '<script>x()</script> b-err' >&2; "
            "while [ ! -e /c ]; do sleep 0.02; done; "
            "for i in $(seq 1 450); do echo c-$i; done; echo b-2 late; echo END"
        ),
    )
    wait_for_output(c, b"B-2 early")
    start = next_second()
    subprocess.run(["docker", "exec", c.docker_id, "touch", "/b"], check=True)
    wait_for_output(c, b"b-err")
    end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    next_second()
    subprocess.run(["docker", "exec", c.docker_id, "touch", "/c"], check=True)
    wait_for_output(c, b"END")

    url = reverse("containers:logs:page", args=[c.pk])
    viewer = login(cast.viewer)
    rng = f"start={start}&end={end}&order=oldest"

    def check():
        # No periodic capture ran: a live container's search archives what it printed.
        lines, _, body = found(viewer, url, rng)
        assert sorted(lines) == sorted(
            [("stdout", f"b-{i}") for i in range(1, 6)] + [("stderr", "<script>x()</script> b-err")]
        )
        assert "&lt;script&gt;x()&lt;/script&gt; b-err" in body and "<script>x()" not in body
        assert found(viewer, url, rng + "&q=B-2")[0] == [("stdout", "b-2")]  # any case
        assert [t for _, t in found(viewer, url, rng + "&re=1&q=^b-[13]$")[0]] == ["b-1", "b-3"]
        assert found(viewer, url, rng + "&stream=stderr")[0] == [
            ("stderr", "<script>x()</script> b-err")
        ]
        # Without a range the same text is found in every burst, newest first by default.
        assert [t for _, t in found(viewer, url, "q=b-2")[0]] == ["b-2 late", "b-2", "B-2 early"]
        assert [t for _, t in found(viewer, url, f"q=b-2&end={end}")[0]] == ["b-2", "B-2 early"]
        assert [t for _, t in found(viewer, url, f"q=b-2&start={start}")[0]] == ["b-2 late", "b-2"]
        # Pages of 200 with a cursor: every line once, in order, both ways.
        expected = [f"c-{i}" for i in range(1, 451)]
        assert all_pages(viewer, url, "re=1&q=^c-&order=oldest") == (expected, 3)
        assert all_pages(viewer, url, "re=1&q=^c-") == (expected[::-1], 3)
        # The download is the slice asked for, in time order, with the lines' times.
        download = viewer.get(url + f"?search=1&download=1&{rng}&re=1&q=^b-[0-9]$")
        text = b"".join(download.streaming_content).decode().splitlines()
        assert [line.split(" ")[2] for line in text] == [f"b-{i}" for i in range(1, 6)]
        assert all(line.startswith(start[:10]) and " stdout " in line for line in text)

    check()
    subprocess.run(["docker", "rm", "-f", c.docker_id], check=True, capture_output=True)
    sync_host(local_host)
    c.refresh_from_db()
    assert c.removed_at is not None
    check()

    # Chunks outside the range are skipped by their time index, never decompressed.
    assert list(search._chunks(c, search.parse({"start": "2099-01-01T00:00"}))) == []
    assert list(search._chunks(c, search.parse({"end": "2000-01-01T00:00"}))) == []
    assert list(search._chunks(c, search.parse({"start": start, "end": end})))

    # Cut after a bounded number of lines looked at: a page to be continued, no line lost.
    opts = search.parse({"q": "c-44", "order": "oldest"})
    page = search.search(c, opts, max_scan=30)
    assert page.lines == [] and page.scan_cut and page.more
    seen = []
    while page.more:
        opts.cursor = page.more
        page = search.search(c, opts, limit=3, max_scan=100)
        seen += [ln.text for ln in page.lines]
    assert seen == ["c-44"] + [f"c-44{i}" for i in range(10)]

    # Who could see the container, and only they, search it and download a slice.
    for name in ("owner", "operator", "teamadmin", "admin"):
        assert login(cast.users[name]).get(url + "?search=1&q=b").status_code == 200
    outsider = login(cast.outsider)
    assert outsider.get(url + "?search=1&q=b").status_code == 404
    assert outsider.get(url + "?search=1&q=b&download=1").status_code == 404


JUNK = ["2026-13-45T99:99", "99999999999999999999999", "²", "x" * 5000,
        "<script>alert(1)</script>", "9999-12-31T23:59"]  # fmt: skip


def test_bad_range_and_junk_are_messages_never_errors(login, cast, make_container):
    c = make_container(cast.owner, cast.alpha, command=shell("echo hello"))
    url = reverse("containers:logs:page", args=[c.pk])
    viewer = login(cast.viewer)
    page = viewer.get(url + "?search=1&start=2026-11-28T12:00&end=2026-11-28T11:59")
    assert page.status_code == 200
    assert "The “from” time is after the “to” time." in page.content.decode()
    bad = viewer.get(url + "?search=1&end=yesterday&download=1")
    assert bad.status_code == 400 and "The “to” time must look like" in bad.content.decode()
    regex = viewer.get(url + "?search=1&re=1&q=(").content.decode()
    assert "Not a valid regular expression" in regex
    for name in ("start", "end", "q", "stream", "order", "cursor", "re", "search"):
        for value in JUNK:
            for extra in ({}, {"download": "1"}) if name in ("start", "q") else ({},):
                response = viewer.get(url, {"search": "1", name: value, **extra})
                assert response.status_code in (200, 400), (name, value)
                body = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                assert b"<script>alert" not in body
