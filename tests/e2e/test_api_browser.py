"""The API tokens page and the API reference (Swagger UI) in Chromium, under the CSP."""

import re
import time

import pytest
from playwright.sync_api import expect

from api.models import ApiToken
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.live, pytest.mark.e2e]


def test_operator_makes_a_token_reads_the_api_reference_and_revokes_it(
    live_dashboard, browser_page, cast
):
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(re.compile(r"/tokens/$"))

    page.fill("#id_name", "ci-deploy")
    page.select_option("#id_team", label="alpha")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token")
    expect(token).to_have_text(re.compile(r"^dky_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$"))
    expect(page.locator("table")).to_contain_text("read and write, team alpha only")
    page.screenshot(path=str(SCREENSHOTS / "api-tokens.png"), full_page=True)

    page.get_by_role("button", name="API reference").click()
    expect(page).to_have_url(re.compile(r"/api/v1/docs/$"))
    expect(page.locator(".swagger-ui .title")).to_contain_text("Dockyard API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.get_by_text("/api/v1/containers/{id}/{action}/")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    assert not page.errors, page.errors  # no CSP violation, no script error

    page.goto("/tokens/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("table")).to_contain_text("revoked")
    assert ApiToken.objects.get(name="ci-deploy").revoked
    assert not page.errors, page.errors


TICKER = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
]


def test_a_followed_log_streams_through_daphne_as_lines_come(live_dashboard, cast, make_container):
    """Under the real ASGI server the log is streamed, not gathered first: the first
    lines arrive while the follow (an hour by default) goes on; the client may leave."""
    import requests

    from api import tokens
    from dashboard.audit import Actor

    box = make_container(owner=cast.owner, team=cast.alpha, command=TICKER)
    _row, token = tokens.create_token(Actor.system(), cast.viewer, "follow")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{live_dashboard.url}/api/v1/containers/{box.pk}/logs/?follow=1&tail=1&ts=0"
    with requests.get(url, headers=headers, stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        lines = response.iter_lines(decode_unicode=True)
        first, second = next(lines), next(lines)
    assert first.startswith("tick-") and second.startswith("tick-")
    assert int(second[5:]) == int(first[5:]) + 1
    # The server is still fine after the client left in the middle of a follow.
    me = requests.get(f"{live_dashboard.url}/api/v1/me/", headers=headers, timeout=10)
    assert me.json()["username"] == "viewer"
    time.sleep(0.5)
    assert "Traceback" not in live_dashboard.log.read_text()
