"""Registries in Chromium: a team admin tests the login, browses to a tag and deletes it."""

import re

import pytest
from playwright.sync_api import expect

from dashboard.audit import Actor
from registries import services
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS
from tests.registries.conftest import namespace, push

pytestmark = [pytest.mark.live, pytest.mark.e2e]


@pytest.fixture
def registry(cast, registry_server):
    return services.save_registry(
        Actor.system(),
        name="test-registry",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
        teams=[cast.alpha],
    )


def test_team_admin_tests_login_browses_and_deletes_a_tag(
    live_dashboard, browser_page, cast, registry, registry_server, docker_client, celery_worker
):
    page = browser_page
    repo = f"{namespace()}/browser"
    gone = push(docker_client, registry_server, repo, "old", unique=True)
    push(docker_client, registry_server, repo, "new", unique=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/accounts/login/")
    page.fill("#id_username", "teamadmin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Registries").click()
    page.get_by_role("link", name="test-registry").click()
    page.get_by_role("button", name="Test login").click()
    expect(page.locator("#test-result")).to_contain_text("Login OK")
    expect(page.locator("#test-result")).to_contain_text("as pusher")
    page.screenshot(path=str(SCREENSHOTS / "registry_detail.png"), full_page=True)

    expect(page.locator("#last-login")).to_contain_text("OK")
    page.get_by_role("button", name="Browse repositories").click()
    page.get_by_role("link", name=repo).click()
    expect(page).to_have_url(re.compile(rf"/tags/{repo}/$"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("new")
    expect(page.locator(f'td[title="{gone}"]')).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "registry_tags.png"), full_page=True)

    page.locator("tbody tr", has_text="old").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/"))
    expect(page.locator(".jobs")).to_contain_text("Succeeded", timeout=15_000)
    expect(page.locator(".jobs")).to_contain_text("Delete tag test-registry")
    page.go_back()
    page.reload()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert not page.errors, page.errors
