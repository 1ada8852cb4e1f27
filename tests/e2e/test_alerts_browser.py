"""Monitoring pages in Chromium: an operator makes a rule, sees it fire, silences it."""

import re

import pytest
from playwright.sync_api import expect

from alerts import evaluate
from alerts.models import AlertRule, Notification
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.live, pytest.mark.e2e]


def test_operator_makes_a_rule_sees_it_fire_and_silences_it(
    live_dashboard, browser_page, cast, make_container, monkeypatch
):
    from alerts.tasks import deliver_due

    monkeypatch.setattr(deliver_due, "apply_async", lambda *a, **k: None)
    page = browser_page
    box = make_container(owner=cast.owner, team=cast.alpha)
    page.goto("/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Monitoring").click()
    expect(page).to_have_url(re.compile(r"/monitoring/$"))
    page.get_by_role("link", name="Rules", exact=True).click()
    page.get_by_role("button", name="New rule").click()
    page.fill("#id_name", "web-oom")
    page.select_option("#id_event", "oom")
    page.fill("#id_name_glob", "t-*")
    page.fill("#id_recipients", "ops@example.test\noncall@example.test")
    page.screenshot(path=str(SCREENSHOTS / "alert-rule-form.png"), full_page=True)
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator(".flash-success")).to_contain_text("Rule web-oom created")
    expect(page.locator("table")).to_contain_text("web-oom")
    page.screenshot(path=str(SCREENSHOTS / "alert-rules.png"), full_page=True)
    rule = AlertRule.objects.get(name="web-oom")
    assert rule.team == cast.alpha
    assert rule.recipients == ["ops@example.test", "oncall@example.test"]

    # The engine reports an OOM kill (as the events watcher passes it on).
    evaluate.on_container_event(box.host, box, {"Action": "oom", "timeNano": 1})
    Notification.objects.filter(recipient="oncall@example.test").update(
        status="failed", last_error="550 5.1.1 no such mailbox"
    )
    page.get_by_role("link", name="Alerts", exact=True).click()
    expect(page.locator("table")).to_contain_text(box.name)
    expect(page.locator("table")).to_contain_text("550 5.1.1")
    page.screenshot(path=str(SCREENSHOTS / "alerts.png"), full_page=True)

    page.get_by_role("link", name="Silences", exact=True).click()
    page.select_option("#id_rule", label="web-oom")
    page.fill("#id_duration", "2h")
    page.fill("#id_comment", "upgrading the web tier")
    page.get_by_role("button", name="Silence").click()
    expect(page.locator("table")).to_contain_text("upgrading the web tier")
    page.screenshot(path=str(SCREENSHOTS / "silences.png"), full_page=True)
    page.get_by_role("button", name="Expire now").click()
    expect(page.locator(".flash-success")).to_contain_text("expired")
