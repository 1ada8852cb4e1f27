"""An operator's whole flow in Chromium against the real server, worker and engine.

Job rows turn "Succeeded" and the container's state badge changes without any
page load: the updates only arrive over the /ws/jobs/<id>/ websocket.
"""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from containers.models import Container
from dashboard.models import AuditEntry, Job
from tests.conftest import PASSWORD
from tests.e2e.conftest import SCREENSHOTS, free_port
from tests.support.helpers import TEST_LABEL, engine_state, unique

pytestmark = [pytest.mark.live, pytest.mark.e2e]

LOOP = "sh -c \"trap 'exit 0' TERM; while true; do echo tick; sleep 1; done\""
JOB_TIMEOUT = 30_000  # ms: queue, worker, engine, channel layer, websocket


def shot(page, name):
    # caret="initial": hiding the caret leaves style="" on every input, which htmx
    # then copies when it settles a swap, and the CSP (rightly) reports that.
    # animations="disabled": no half-faded htmx indicator in the picture.
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"),
        full_page=True,
        caret="initial",
        animations="disabled",
    )


def drop_expected_error(page, text, url_path):
    """Remove the one console error a deliberate bad request causes (Chromium logs it)."""
    expected = [e for e in page.errors if text in e and e.endswith(f"{url_path})")]
    assert len(expected) == 1, page.errors
    page.errors.remove(expected[0])


def mark_document(page):
    """Tag the current document: the tag survives htmx swaps, not a page load."""
    page.evaluate("window.__noReload = 'still-here'")


def assert_not_reloaded(page):
    assert page.evaluate("window.__noReload") == "still-here", "the page was reloaded"


def test_operator_creates_filters_stops_and_audits_a_container_live_in_the_browser(
    live_dashboard, browser_page, cast, local_host, make_container, celery_worker, engine_cleanup
):
    page = browser_page
    name = unique("e2e")
    other = make_container(owner=cast.owner, team=cast.alpha, name=unique("e2e-other"))
    host_port = free_port()

    # Log in through the form.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    # Containers → New container, filled in.
    page.get_by_role("navigation").get_by_role("link", name="Containers").click()
    page.get_by_role("button", name="New container").click()
    expect(page).to_have_url(re.compile(r"/containers/new/$"))
    page.select_option("#id_host", label="local")
    page.select_option("#id_team", label="alpha")
    page.fill("#id_image", settings.TEST_IMAGE)
    page.fill("#id_name", name)
    page.fill("#id_command", LOOP)
    page.fill("#id_ports", f"127.0.0.1:{host_port}:80")
    page.fill("#id_labels", f"{TEST_LABEL}=1")
    page.fill("#id_env", "API_TOKEN=s3cret")
    shot(page, "create-filled")

    # A bad port first: a clear message in place, nothing queued.
    mark_document(page)
    page.fill("#id_ports", "127.0.0.1:70000:80")
    page.get_by_role("button", name="Create and start").click()
    expect(page.locator("#create")).to_contain_text("70000")
    assert_not_reloaded(page)
    assert page.input_value("#id_name") == name  # the rest of the form is kept
    shot(page, "create-error")
    assert not Job.objects.exists()
    drop_expected_error(page, "status of 422", "/containers/new/")

    # Corrected: the job row appears and turns Succeeded over the websocket.
    page.fill("#id_ports", f"127.0.0.1:{host_port}:80")
    page.get_by_role("button", name="Create and start").click()
    create_job = page.locator("#create .job")
    expect(create_job).to_have_count(1)
    expect(create_job).to_contain_text("Succeeded", timeout=JOB_TIMEOUT)
    assert_not_reloaded(page)
    shot(page, "create-succeeded")
    job = Job.objects.get(kind="container.create")
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Container.objects.get(name=name)
    assert (row.owner, row.team) == (cast.owner, cast.alpha)
    assert engine_state(engine_cleanup, row.docker_id) == "running"
    bindings = engine_cleanup.api.inspect_container(row.docker_id)["HostConfig"]["PortBindings"]
    assert bindings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}

    # The list shows it running; the filter box narrows the table in place.
    page.get_by_role("navigation").get_by_role("link", name="Containers").click()
    table_rows = page.locator("#container-table tbody tr")
    ours = page.locator(f"#container-{row.pk}")
    expect(ours.locator(".state")).to_have_text("running")
    expect(page.locator(f"#container-{other.pk}")).to_be_visible()
    mark_document(page)
    with page.expect_response(lambda r: f"q={name}" in r.url):
        page.fill("#q", name)
    expect(table_rows).to_have_count(1)
    expect(ours).to_be_visible()
    expect(page).to_have_url(re.compile(rf"[?&]q={name}"))
    assert_not_reloaded(page)

    # Stop from the row: job row appears, succeeds, and the badge turns exited.
    ours.get_by_role("button", name="stop").click()
    stop_job = page.locator("#jobs .job")
    expect(stop_job).to_have_count(1)
    expect(stop_job).to_contain_text("Succeeded", timeout=JOB_TIMEOUT)
    expect(ours.locator(".state")).to_contain_text("exited", timeout=JOB_TIMEOUT)
    assert_not_reloaded(page)
    assert engine_state(engine_cleanup, row.docker_id) == "exited"
    row.refresh_from_db()
    assert row.state == "exited"
    shot(page, "container-list-filtered-after-stop")
    with page.expect_response(lambda r: "/containers/?" in r.url and "q=&" in r.url):
        page.fill("#q", "")
    expect(table_rows).to_have_count(2)
    shot(page, "container-list")

    # Detail page: the token's value is masked.
    ours.get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(rf"/containers/{row.pk}/$"))
    env_row = page.locator("tr", has=page.locator("td", has_text=re.compile("^API_TOKEN$")))
    expect(env_row).to_have_count(1)
    expect(env_row.locator("td").nth(1)).not_to_have_text("s3cret")
    expect(env_row.locator("td").nth(1)).not_to_be_empty()
    assert "s3cret" not in page.content()
    shot(page, "container-detail")

    # Audit log: the stop, by owner, on that container.
    page.get_by_role("navigation").get_by_role("link", name="Audit log").click()
    stop_entry = page.locator("#audit-table tbody tr").filter(has_text="container.stop")
    expect(stop_entry).to_have_count(1)
    expect(stop_entry.locator("td").nth(1)).to_have_text("owner")
    expect(stop_entry).to_contain_text(name)
    entry = AuditEntry.objects.get(action="container.stop")
    assert (entry.username, entry.target_name, entry.result) == ("owner", name, "ok")
    shot(page, "audit-log")

    assert page.errors == [], "\n".join(page.errors)
    server_log = live_dashboard.log.read_text()
    assert "Traceback" not in server_log, server_log[-4000:]


def test_the_list_follows_the_engine_without_a_reload(
    live_dashboard, browser_page, cast, make_container, engine_cleanup
):
    page = browser_page
    row = make_container(owner=cast.owner, team=cast.alpha, name=unique("e2e-poll"))
    page.goto("/accounts/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/containers/")
    badge = page.locator(f"#container-{row.pk} .state")
    expect(badge).to_have_text("running")
    mark_document(page)

    # Stopped behind the dashboard's back (the CLI, a crash): the list catches up.
    engine_cleanup.api.stop(row.docker_id, timeout=5)
    expect(badge).to_have_text(re.compile(r"^exited"), timeout=15_000)
    assert_not_reloaded(page)
    assert page.errors == [], "\n".join(page.errors)
