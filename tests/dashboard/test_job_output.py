"""A long job's output and progress bars: written in batches, cleaned, kept to a tail,
pushed to the job page's socket only, downloadable by those who may see the job."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from containers.inspect import MASK
from dashboard import jobs
from dashboard.asgi import application
from dashboard.models import Job
from tests.dashboard.test_job_websocket import ORIGIN, TIMEOUT, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def job(cast):
    return Job.objects.create(
        kind="container.action", user=cast.owner, target="image web", status=Job.Status.RUNNING
    )


def stored(job):
    return Job.objects.get(pk=job.pk)


def test_lines_are_cleaned_of_terminal_escapes_and_credentials(job):
    with jobs.reporter(job) as out:
        out.line("\x1b[1;32mStep 1/2\x1b[0m : FROM base")
        out.line("Pulling from https://deploy:hunter2@registry.example.com/app\r\n")
        out.line("bell\x07 and nul\x00 gone")
    text = stored(job).output
    assert text.splitlines() == [
        "Step 1/2 : FROM base",
        f"Pulling from https://deploy:{MASK}@registry.example.com/app",
        "bell and nul gone",
    ]
    assert "hunter2" not in text and "\x1b" not in text


def test_output_keeps_the_tail_from_a_line_start(job, settings):
    settings.JOB_OUTPUT_MAX_CHARS = 100
    with jobs.reporter(job) as out:
        for n in range(50):
            out.line(f"line {n:03d}")
    text = stored(job).output
    assert len(text) <= 100 and text.endswith("line 049\n")
    assert text.startswith("line ")  # never half a line


def test_writes_are_batched_and_the_last_one_always_lands(job, settings):
    settings.JOB_OUTPUT_FLUSH_SECONDS = 60
    with jobs.reporter(job) as out:
        for n in range(200):
            out.line(f"line {n}")
            out.progress("layer", status="Downloading", current=n, total=199)
        # The first call flushed; the rest waits for the window or the end.
        assert stored(job).output == "line 0\n"
    job = stored(job)
    assert job.output.count("\n") == 200
    assert job.progress == {"layer": {"status": "Downloading", "current": 199, "total": 199}}


def test_progress_is_clamped_and_bounded(job):
    with jobs.reporter(job) as out:
        out.progress("a", status="Downloading", current=500, total=100)
        out.progress("b", status="Waiting")
        out.progress("steps", status="Step 2", current=2, total=5, unit="steps")
        for n in range(jobs.MAX_PROGRESS_KEYS + 10):
            out.progress(f"k{n}", status="x")
    progress = stored(job).progress
    assert progress["a"] == {"status": "Downloading", "current": 100, "total": 100}
    assert progress["b"] == {"status": "Waiting"}
    assert len(progress) == jobs.MAX_PROGRESS_KEYS
    # Overall: bytes only; the step counter is not mixed in.
    assert jobs.overall_progress(progress) == (100, 100)


def test_job_page_shows_bars_and_escaped_output(client, cast, job):
    with jobs.reporter(job) as out:
        out.progress("sha256:abc", status="Downloading", current=5 * 1024**2, total=10 * 1024**2)
        out.line("<script>alert(1)</script>")
    client.force_login(cast.owner)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<progress value="5242880" max="10485760">' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "?download=1" in html


@pytest.mark.parametrize(
    "who, status", [("owner", 200), ("admin", 200), ("operator", 404), ("outsider", 404)]
)
def test_output_download_is_for_who_may_see_the_job(client, cast, job, who, status):
    with jobs.reporter(job) as out:
        out.line("built layer 1")
    client.force_login(getattr(cast, who))
    response = client.get(f"/jobs/{job.pk}/?download=1")
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/plain")
        assert "attachment" in response["Content-Disposition"]
        assert response.content == b"built layer 1\n"


def test_output_is_pushed_to_the_job_page_socket_only(cast, job, settings):
    settings.JOB_OUTPUT_FLUSH_SECONDS = 0
    headers = [ORIGIN, session_cookie(cast.owner)]

    def write(text):
        with jobs.reporter(stored(job)) as out:
            out.line(text)

    async def watch(query):
        comm = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/{query}", headers=headers)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        messages = [await comm.receive_from(timeout=TIMEOUT)]
        if query == "?follow=output":
            messages.append(await comm.receive_from(timeout=TIMEOUT))
        await sync_to_async(write)("Step <2/2> : RUN make")
        if query == "?follow=output":
            messages.append(await comm.receive_from(timeout=TIMEOUT))
            messages.append(await comm.receive_from(timeout=TIMEOUT))
        quiet = await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return messages, quiet

    messages, quiet = async_to_sync(watch)("?follow=output")
    assert quiet
    assert f'id="job-output-{job.pk}"' in messages[1]
    assert "Step &lt;2/2&gt; : RUN make" in messages[3] and 'hx-swap-oob="true"' in messages[3]
    # A container row watching the same job has no output block: nothing is sent.
    messages, quiet = async_to_sync(watch)("?follow=row")
    assert quiet and len(messages) == 1
