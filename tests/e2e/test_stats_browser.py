"""The stats page in Chromium: history charts, live points from each sweep, the host page."""

import re
import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from monitoring import collector
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS
from tests.monitoring.conftest import BURN, HOLD

pytestmark = [pytest.mark.live, pytest.mark.e2e]


def sweep(host):
    """A collector sweep in a thread of its own, as in the worker (Playwright's sync API
    keeps an event loop running in this one)."""

    out = []

    def run():
        try:
            out.append(collector.sweep_host(host))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return out[0]


def test_viewer_opens_stats_sees_history_then_live_points_and_the_host_page(
    live_dashboard, browser_page, cast, make_container, local_host
):
    page = browser_page
    collector.forget()
    burner = make_container(owner=cast.owner, team=cast.alpha, command=BURN, mem_limit="64m")
    make_container(owner=cast.owner, team=cast.alpha, command=HOLD, tmpfs={"/data": ""})
    for _ in range(3):  # some history before the page opens
        sweep(local_host)
        time.sleep(0.5)
    page.goto("/accounts/login/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/containers/{burner.pk}/")
    page.get_by_role("link", name="Stats", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/containers/{burner.pk}/stats/"))
    expect(page.locator(".stats-chart canvas")).to_have_count(5)
    expect(page.locator("#stats-status")).to_have_text("live")
    # A sweep while the page is open: its point arrives over the socket.
    result = sweep(local_host)
    expect(page.locator("#stats-status")).to_contain_text("last sweep")
    # The figure of that sweep (as busy as the shared machine lets the loop be).
    cpu = result.figures[burner.pk]["cpu_percent"]
    shown = f"{cpu:.2f} %" if 0 < abs(cpu) < 1 else f"{cpu:.1f} %"
    expect(page.locator('[data-now="cpu_percent"]')).to_have_text(shown)
    assert cpu > 5
    expect(page.locator('[data-now="mem_limit_bytes"]')).to_have_text("64.0 MiB")
    page.screenshot(path=str(SCREENSHOTS / "stats.png"), full_page=True)

    page.locator(".range-picker a", has_text="24h").click()
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(page.locator(".stats-chart canvas")).to_have_count(5)

    page.goto(f"/hosts/{local_host.pk}/")
    expect(page.locator("#host-metrics")).to_contain_text("cgroup files (local)")
    expect(page.locator("#host-metrics")).to_contain_text(burner.name)
    expect(page.locator("#host-metrics .stats-chart canvas")).to_have_count(4)
    page.screenshot(path=str(SCREENSHOTS / "host_metrics.png"), full_page=True)
    assert not page.errors, page.errors
