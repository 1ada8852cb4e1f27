"""The logs page in Chromium: live lines, a filter, then the console from the container."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.live, pytest.mark.e2e]

TICKER = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo beat-$i; "
    "if [ $((i % 3)) -eq 0 ]; then echo fizz-$i; fi; sleep 0.3; done",
]


def test_operator_watches_filters_the_log_then_uses_the_console(
    live_dashboard, browser_page, cast, make_container
):
    page = browser_page
    box = make_container(owner=cast.owner, team=cast.alpha, command=TICKER)
    page.goto("/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/containers/{box.pk}/")
    page.get_by_role("link", name="Logs", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/containers/{box.pk}/logs/"))
    pane = page.locator("#log-lines")
    expect(pane).to_contain_text("beat-1")
    seen = pane.locator(".l.stdout").count()
    expect(pane.locator(".l.stdout")).not_to_have_count(seen, timeout=10_000)  # live lines

    page.fill("input[name=q]", "fizz")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"q=fizz"))
    expect(pane).to_contain_text("fizz-3")
    expect(pane.locator(".l.stdout").last).to_contain_text("fizz")
    texts = pane.locator(".l.stdout").all_inner_texts()
    assert texts and all("fizz" in t for t in texts), texts
    expect(page.locator("#log-status")).to_have_text("")
    page.screenshot(path=str(SCREENSHOTS / "logs.png"), full_page=True)

    # The archive of the same (live) container, searched by a regular expression.
    page.get_by_role("link", name="Search the archive").click()
    page.fill("input[name=q]", "^fizz-(3|6)$")
    page.check("input[name=re]")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"search=1"))
    found = page.locator("#log-lines .l")
    expect(found).to_have_count(2)
    expect(found.first).to_contain_text("fizz-6")  # newest first
    page.screenshot(path=str(SCREENSHOTS / "logs-search.png"), full_page=True)

    page.goto(f"/containers/{box.pk}/")
    page.get_by_role("link", name="Open console").click()
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#console-status")).to_have_text("Connected (recorded).")
    rows = page.locator(".xterm-rows")
    expect(rows).to_contain_text("#")
    page.keyboard.type("echo out-$((6*7))-put\n")
    expect(rows).to_contain_text("out-42-put")
    assert not page.errors, page.errors  # no CSP violation, no script error
