"""Images in Chromium: build from the editor, watch the output stream, push with the
per-layer progress bars (screenshots images-build.png and images-push.png)."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS
from tests.images.conftest import (  # noqa: F401  (fixtures used below)
    image_name,
    registry,  # noqa: F811
    remove_run_images,
    shared_base,  # noqa: F811 (the imported fixture)
)

pytestmark = [pytest.mark.live, pytest.mark.e2e]

DOCKERFILE = (
    "FROM dockyard-test/busybox:latest\n"
    "RUN for i in 1 2 3; do echo build-line-$i; sleep 0.4; done\n"
    "RUN head -c 800000 /dev/urandom > /payload\n"
)


def test_operator_builds_then_pushes_with_progress(
    live_dashboard,
    browser_page,
    cast,
    local_host,
    shared_base,  # noqa: F811 (the imported fixture)
    registry,  # noqa: F811
    celery_worker,
    docker_client,
):
    page = browser_page
    tagged = f"{registry.address}/{image_name('web')}:1.0"
    try:
        page.goto("/accounts/login/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", PASSWORD)
        page.get_by_role("button", name="Log in").click()

        page.goto("/images/")
        page.screenshot(path=str(SCREENSHOTS / "images-list.png"), full_page=True)
        page.get_by_role("button", name="Build", exact=True).click()
        expect(page).to_have_url(re.compile(r"/images/build/$"))
        page.fill("#id_tag", tagged)
        page.fill("#id_dockerfile_text", DOCKERFILE)
        page.get_by_role("button", name="Build", exact=True).click()

        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        log = page.locator(".job-log")
        expect(log).to_contain_text("build-line-1", timeout=30_000)
        expect(log).to_contain_text("build-line-3")
        expect(log).to_contain_text(f"Successfully tagged {tagged}", timeout=30_000)
        expect(page.locator(".jobs")).to_contain_text("Succeeded", timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "images-build.png"), full_page=True)

        page.goto("/images/?q=" + tagged.rsplit(":", 1)[0])
        page.get_by_role("link", name=tagged).click()
        expect(page.locator("h1")).to_have_text(tagged)
        page.screenshot(path=str(SCREENSHOTS / "images-detail.png"), full_page=True)
        page.get_by_role("button", name="Push", exact=True).click()

        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        bars = page.locator(".progress-list li")
        expect(page.locator(".jobs")).to_contain_text("Succeeded", timeout=30_000)
        expect(bars.filter(has_text="Pushed").first).to_be_visible()
        expect(page.locator(".progress-overall progress")).to_be_visible()
        expect(page.locator(".jobs")).to_contain_text("Pushed " + tagged)
        page.screenshot(path=str(SCREENSHOTS / "images-push.png"), full_page=True)
        page.goto("/images/pull/")
        expect(page.get_by_label("Registry")).to_contain_text(registry.name)
        page.screenshot(path=str(SCREENSHOTS / "images-pull.png"), full_page=True)
        assert not page.errors, page.errors
    finally:
        remove_run_images(docker_client)
