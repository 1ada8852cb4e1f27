"""?download=1: the whole log as a streamed text/plain attachment."""

import subprocess

import pytest
from django.urls import reverse

from tests.logs.support import shell

pytestmark = [pytest.mark.live]


def test_download_streams_the_whole_log(login, cast, make_container):
    c = make_container(
        cast.owner,
        cast.alpha,
        command=shell("for i in $(seq 1 2000); do echo d-$i; done; echo '<b>' >&2"),
    )
    url = reverse("containers:logs:page", args=[c.pk]) + "?download=1&ts=0&q=d-1"
    for _ in range(50):
        response = login(cast.viewer).get(url)
        body = b"".join(response.streaming_content).decode()
        if "<b>" in body:
            break
    assert response.streaming and response["Content-Type"].startswith("text/plain")
    assert response["Content-Disposition"] == f'attachment; filename="{c.name}.log"'
    lines = body.splitlines()
    # The engine reads stdout and stderr from two pipes: their order between them may vary.
    lines.remove("<b>")
    assert lines == [f"d-{i}" for i in range(1, 2001)]  # the whole log, unfiltered

    # Removed behind the dashboard's back, not yet noticed: a clear 502, not a cut-off 200.
    subprocess.run(["docker", "rm", "-f", c.docker_id], check=True, capture_output=True)
    gone = login(cast.viewer).get(url)
    assert gone.status_code == 502 and not gone.streaming
    assert gone["Content-Type"].startswith("text/plain")
    assert "The engine did not give the log" in gone.content.decode()
