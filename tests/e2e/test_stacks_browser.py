"""The app gallery in Chromium: an operator deploys the 2048 template on a clean engine
with no registry reachable (the image is built on the host from the project's context
on the busybox base); ports 8016–8019 each serve the game, and a key press moves tiles."""

import re
import urllib.request

import pytest
from django.conf import settings
from playwright.sync_api import expect

from dashboard.models import Job
from stacks.models import Stack
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS
from tests.stacks.conftest import remove_project
from tests.support.helpers import wait_job

pytestmark = [pytest.mark.live, pytest.mark.e2e]
PORTS = (8016, 8017, 8018, 8019)


@pytest.fixture
def game_image(docker_client, settings, tmp_path):
    settings.STACKS_ROOT = str(tmp_path / "stacks")
    tag = f"dockyard-test/2048:{settings.RUN_ID}"
    yield tag
    for project in Stack.objects.values_list("project", flat=True):
        remove_project(docker_client, project)
    try:
        docker_client.api.remove_image(tag, force=True)
    except Exception:
        pass


def test_operator_deploys_2048_and_plays(
    live_dashboard, browser_page, cast, local_host, celery_worker, game_image
):
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/stacks/templates/")
    page.screenshot(path=str(SCREENSHOTS / "stacks-gallery.png"), full_page=True)
    page.get_by_role("button", name="Deploy 2048").click()
    page.fill("#id_name", "game")
    page.fill("#id_var_IMAGE", game_image)
    page.fill("#id_var_BASE_IMAGE", settings.TEST_IMAGE)
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page).to_have_url(re.compile(r"/stacks/\d+/$"))
    stack = Stack.objects.get(name="game")
    job = wait_job(Job.objects.get(params__stack_id=stack.pk), timeout=120)
    assert job.status == "succeeded", f"{job.message}\n{job.output}"

    for port in PORTS:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert "<title>2048</title>" in response.read().decode()

    page.reload()
    for n in range(1, 5):
        expect(page.locator(f"tr.service-game-{n}")).to_contain_text("running")
    expect(page.locator("#services")).to_contain_text("0.0.0.0:8016")
    page.screenshot(path=str(SCREENSHOTS / "stacks-2048.png"), full_page=True)

    page.goto("http://127.0.0.1:8016/")
    board = page.locator("#board")
    expect(board.locator(".cell")).to_have_count(16)
    before = board.inner_text()
    for key in ("ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"):
        page.keyboard.press(key)
        if board.get_attribute("data-moves") != "0":
            break
    assert board.get_attribute("data-moves") == "1"
    assert board.inner_text() != before  # the tiles moved (and a new one appeared)
    page.screenshot(path=str(SCREENSHOTS / "stacks-2048-game.png"))
    assert not page.errors, page.errors

    # The stack's logs, interleaved; then an edit previewed as a diff (nothing deployed).
    page.goto(f"/stacks/{stack.pk}/logs/")
    expect(page.locator("#stack-logs")).to_contain_text("game-1")
    page.screenshot(path=str(SCREENSHOTS / "stacks-logs.png"), full_page=True)
    page.goto(f"/stacks/{stack.pk}/edit/")
    editor = page.locator("#id_compose")
    editor.fill(editor.input_value().replace("restart: unless-stopped", "restart: always"))
    page.get_by_role("button", name="Preview changes").click()
    expect(page.locator("#diff .diff-add")).to_contain_text("restart: always")
    expect(page.get_by_role("button", name="Deploy this version")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "stacks-edit-diff.png"), full_page=True)
    assert stack.versions.count() == 1
    assert not page.errors, page.errors
