"""The web process restarts under an open page: its socket reconnects by itself.

A job page is open while daphne is killed and started again on the same port; the
job then finishes. The page shows the result without a reload (htmx's ws extension
reconnects, and the consumer sends the job's state on connect), with one row only.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from dashboard.jobs import publish
from dashboard.models import Job
from tests.conftest import PASSWORD
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    _server_env,
    _test_database_url,
    _wait_for_port,
    free_port,
)

pytestmark = [pytest.mark.live, pytest.mark.e2e]


class Daphne:
    def __init__(self, port, log_path):
        self.port, self.log_path, self.proc = port, log_path, None

    def start(self):
        daphne = Path(sys.executable).with_name("daphne")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(daphne),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "dashboard.asgi:application",
                ],
                cwd=ROOT,
                env=_server_env(_test_database_url()),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _wait_for_port(self.port, self.proc, self.log_path)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def daphne(tmp_path):
    server = Daphne(free_port(), tmp_path / "daphne.log")
    server.start()
    yield server
    server.kill()


def test_job_page_reconnects_after_the_web_process_restarts(daphne, cast):
    job = Job.objects.create(kind="container.action", user=cast.owner, target="web-1",
                             params={"action": "stop"})  # fmt: skip
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(base_url=f"http://127.0.0.1:{daphne.port}")
            page.set_default_timeout(20_000)
            page.goto("/accounts/login/")
            page.fill("input[name=username]", cast.owner.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            opened = []
            page.on("websocket", lambda ws: opened.append(ws.url))
            page.goto(f"/jobs/{job.pk}/")
            expect(page.locator(f"#job-{job.pk}")).to_contain_text("Queued")
            page.evaluate("window.__noReload = 'still-here'")
            # Tries again within ~4 s, not htmx's default of up to 64 s.
            assert (
                page.evaluate("[0, 3, 9].map((n) => htmx.config.wsReconnectDelay(n) <= 4000)")
                == [True] * 3
            )
            assert len(opened) == 1

            daphne.kill()
            time.sleep(1)
            daphne.start()
            # The worker finishes the job while the page is (re)connecting.
            Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
            publish(Job.objects.get(pk=job.pk))

            expect(page.locator(f"#job-{job.pk}")).to_contain_text("Succeeded")
            assert page.locator(f"#job-{job.pk}").count() == 1
            assert page.evaluate("window.__noReload") == "still-here"
            assert len(opened) >= 2  # a new socket, opened by the page itself
        finally:
            browser.close()
            # ORM calls made under Playwright's loop opened a connection of their own.
            connections.close_all()
