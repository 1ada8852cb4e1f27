"""The console page in Chromium: xterm.js under the CSP, typing, resizing, leaving."""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from console.models import ConsoleSession
from dashboard.models import AuditEntry
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.live, pytest.mark.e2e]


def test_operator_types_in_the_console_and_leaving_ends_the_session(
    live_dashboard, browser_page, cast, make_container, docker_client
):
    page = browser_page
    box = make_container(owner=cast.owner, team=cast.alpha)
    page.goto("/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/containers/{box.pk}/")
    page.get_by_role("link", name="Open console").click()
    expect(page).to_have_url(re.compile(rf"/containers/{box.pk}/console/$"))
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#console-status")).to_have_text("Connected (recorded).")
    rows = page.locator(".xterm-rows")
    expect(rows).to_contain_text("#")  # the prompt
    page.keyboard.type("echo hi-$((6*7))-there\n")
    expect(rows).to_contain_text("hi-42-there")
    page.set_viewport_size({"width": 900, "height": 700})  # the terminal follows the window
    page.keyboard.type("stty size\n")
    expect(rows).to_contain_text(re.compile(r"\n?\d+ \d+"))
    page.screenshot(path=str(SCREENSHOTS / "console.png"), full_page=True)
    page.goto("/containers/")  # leaving the page closes the socket

    deadline = time.monotonic() + 10
    entry = AuditEntry.objects.get(action="container.exec")
    while entry.result == AuditEntry.Result.PENDING and time.monotonic() < deadline:
        time.sleep(0.2)
        entry = AuditEntry.objects.get(pk=entry.pk)
    assert entry.result == AuditEntry.Result.OK, entry.message
    session = ConsoleSession.objects.get()
    opened_with = json.loads(session.cast().splitlines()[0])["width"]
    resizes = [e for e in session.events() if e[1] == "r"]
    assert resizes and int(resizes[-1][2].split("x")[0]) < opened_with
    top = docker_client.api.top(box.docker_id)
    assert not [p for p in top["Processes"] if p[-1] == "/bin/sh"], top
    assert not page.errors, page.errors  # no CSP violation, no script error


def test_admin_replays_a_session_from_the_audit_log(live_dashboard, browser_page, cast):
    from django.utils import timezone

    from console.recording import Recorder
    from dashboard.audit import Actor, record

    entry = record(Actor(cast.operator), "container.exec", target="web-1", team=cast.alpha)
    recorder = Recorder(80, 24, "/bin/sh")
    recorder.add("o", b"/ # ")
    recorder.add("i", b"echo replayed\r")
    recorder.add("o", b"echo replayed\r\nreplayed-output\r\n/ # ")
    ConsoleSession.objects.create(
        container_name="web-1",
        username="operator",
        command="/bin/sh",
        started_at=timezone.now(),
        ended_at=timezone.now(),
        audit_entry_id=entry.pk,
        recording=recorder.gzipped(),
    )
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/audit/")
    page.get_by_role("link", name="Replay").click()
    page.get_by_role("button", name="Play").click()
    expect(page.locator(".xterm-rows")).to_contain_text("replayed-output")
    page.screenshot(path=str(SCREENSHOTS / "replay.png"), full_page=True)
    assert not page.errors, page.errors
