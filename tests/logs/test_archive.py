"""Logs outlive their container: the json-file log is archived, and the page of a
removed container serves the archive (and its download)."""

import os
import subprocess
import time

import docker
import pytest
from django.urls import reverse

from containers.events import handle_event
from containers.models import Container
from containers.services import sync_host
from logs import archive, tasks
from logs.models import LogChunk, LogCursor
from tests.logs.support import connect, headers_for, shell

pytestmark = [pytest.mark.live]


def wait_for_output(container, needle, timeout=15):
    client = docker.APIClient(base_url="unix:///var/run/docker.sock", version="1.41")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if needle in client.logs(container.docker_id, stdout=True, stderr=True):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise AssertionError(f"{needle!r} not in the log after {timeout}s")


def archived(container):
    return [(ln.stream, ln.text) for ln in archive.archived_lines(container)]


def test_removed_container_page_still_shows_every_line(login, cast, make_container, local_host):
    c = make_container(
        cast.owner,
        cast.alpha,
        command=shell(
            "for i in $(seq 1 500); do echo keep-$i; done; echo '<i>oops</i>' >&2; "
            "head -c 40000 /dev/zero | tr '\\000' y; echo; echo LAST"
        ),
    )
    wait_for_output(c, b"LAST")
    tasks.capture_all_logs()  # the periodic task
    tasks.capture_all_logs()  # idempotent: nothing twice
    assert LogChunk.objects.filter(container=c).count() == 1

    subprocess.run(["docker", "rm", "-f", c.docker_id], check=True, capture_output=True)
    sync_host(local_host)
    c.refresh_from_db()
    assert c.removed_at is not None

    page = login(cast.viewer).get(reverse("containers:logs:page", args=[c.pk]) + "?tail=all&ts=0")
    body = page.content.decode()
    assert page.status_code == 200 and "ws-connect" not in body
    for i in range(1, 501):
        assert f'<div class="l stdout">keep-{i}</div>' in body
    assert '<div class="l stderr">&lt;i&gt;oops&lt;/i&gt;</div>' in body
    assert "y" * 40000 in body  # a long line, split by the engine, whole again
    page_url = reverse("containers:logs:page", args=[c.pk])
    last = login(cast.viewer).get(page_url + "?tail=100&ts=0").content.decode()
    assert ">keep-500</div>" in last and ">keep-400</div>" not in last and ">LAST</div>" in last
    found = (
        login(cast.viewer).get(page_url + "?tail=all&ts=0&re=1&q=keep-4[0-9]7$").content.decode()
    )
    assert found.count('<div class="l stdout">keep-4') == 10
    future = login(cast.viewer).get(page_url + "?since=2099-01-01T00:00").content.decode()
    assert "keep-" not in future and "No archived lines" in future

    download = login(cast.viewer).get(
        reverse("containers:logs:page", args=[c.pk]) + "?download=1&ts=0"
    )
    lines = b"".join(download.streaming_content).decode().splitlines()
    # The engine reads stdout and stderr from two pipes: their order between them may vary.
    lines.remove("<i>oops</i>")
    assert lines == [f"keep-{i}" for i in range(1, 501)] + ["y" * 40000, "LAST"]

    # The archive goes only to who could see the container: an outsider gets nothing.
    outsider = login(cast.outsider)
    assert outsider.get(page_url + "?tail=all").status_code == 404
    assert outsider.get(page_url + "?download=1").status_code == 404
    assert connect(c, headers_for(cast.outsider)) == (False, 4404)

    # Another team re-creates a container under the same name: a new row (a new engine
    # id), its own empty archive; the old output stays with the old row, out of reach.
    again = make_container(cast.outsider, cast.beta, name=c.name, command=shell("echo fresh"))
    assert again.pk != c.pk
    wait_for_output(again, b"fresh")
    tasks.capture_all_logs()
    assert [text for _, text in archived(again)] == ["fresh"]
    page = outsider.get(reverse("containers:logs:page", args=[again.pk]) + "?tail=all")
    assert page.status_code == 200 and "keep-1" not in page.content.decode()
    assert outsider.get(page_url + "?tail=all").status_code == 404


def test_die_event_archives_what_the_last_pass_missed(cast, make_container, local_host):
    c = make_container(cast.owner, cast.alpha, command=shell("echo one; sleep 2; echo two"))
    wait_for_output(c, b"one")
    tasks.capture_all_logs()
    wait_for_output(c, b"two")
    subprocess.run(["docker", "kill", c.docker_id], check=True, capture_output=True)
    client = docker.DockerClient(base_url=local_host.url, version="1.41")
    try:
        handle_event(local_host, client, {"Action": "die", "id": c.docker_id})
    finally:
        client.close()
    assert archived(c) == [("stdout", "one"), ("stdout", "two")]


@pytest.mark.parametrize(
    "last, compress",
    [(350, False), (700, False), (700, True)],
    ids=["one-rotation", "several", "compressed"],
)
def test_rotated_file_is_followed_by_inode(cast, make_container, last, compress):
    config = {"max-size": "20k", "max-file": "5", **({"compress": "true"} if compress else {})}
    c = make_container(
        cast.owner,
        cast.alpha,
        # The rest is written only once the test has archived the first part (no timing).
        command=shell(
            f"seq 1 200; while [ ! -e /go ]; do sleep 0.05; done; seq 201 {last}; echo ROTATED"
        ),
        log_config={"type": "json-file", "config": config},
    )
    wait_for_output(c, b"200\n")
    archive.capture(c)
    first = LogCursor.objects.get(container=c).inode
    subprocess.run(["docker", "exec", c.docker_id, "touch", "/go"], check=True)
    wait_for_output(c, b"ROTATED")
    if compress:  # the engine compresses rotated files in the background: wait for it
        path = LogCursor.objects.get(container=c).path
        deadline = time.monotonic() + 10
        while os.path.exists(f"{path}.1") or not os.path.exists(f"{path}.1.gz"):
            assert time.monotonic() < deadline, "the engine did not compress the rotated log"
            time.sleep(0.1)
    archive.capture(c)
    if not compress:  # compressed: the deleted file's inode number is often reused
        assert LogCursor.objects.get(container=c).inode != first  # it did rotate
    assert [t for _, t in archived(c)] == [str(i) for i in range(1, last + 1)] + ["ROTATED"]


def test_other_log_driver_is_not_archived(login, cast, make_container, local_host):
    c = make_container(cast.owner, cast.alpha, command=shell("echo x"), log_config={"type": "none"})
    # Marked from the live page's first view (the page's capture learns the driver).
    url = reverse("containers:logs:page", args=[c.pk])
    for query in ("", "?search=1&q=x"):
        body = login(cast.viewer).get(url + query).content.decode()
        assert "<strong>Not archived</strong> (log driver none)" in body
    assert archive.capture(c) == 0
    assert LogCursor.objects.get(container=c).status == LogCursor.Status.NOT_ARCHIVED
    subprocess.run(["docker", "rm", "-f", c.docker_id], check=True, capture_output=True)
    sync_host(local_host)
    page = login(cast.viewer).get(reverse("containers:logs:page", args=[c.pk]))
    assert "Not archived" in page.content.decode()


def test_retention_by_age_and_size_is_idempotent(cast, make_container, local_host, settings):
    from datetime import timedelta

    from django.utils import timezone

    from logs.render import Line

    c = make_container(cast.owner, cast.alpha, command=shell("true"))
    data = LogChunk.pack([Line("stdout", "", "z" * 1000)])
    chunks = [
        LogChunk.objects.create(container=c, line_count=1, size=1000, data=data) for _ in range(5)
    ]
    LogChunk.objects.filter(pk=chunks[0].pk).update(created=timezone.now() - timedelta(days=30))
    settings.LOG_ARCHIVE_MAX_AGE_DAYS = 14
    settings.LOG_ARCHIVE_MAX_BYTES_PER_HOST = 2500
    assert archive.prune() == 3  # the old one, then the two oldest over 2500 bytes
    assert archive.prune() == 0
    assert list(LogChunk.objects.values_list("pk", flat=True)) == [chunks[3].pk, chunks[4].pk]
    assert Container.objects.filter(pk=c.pk).exists()
