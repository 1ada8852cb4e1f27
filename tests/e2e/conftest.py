"""Browser tests: the real ASGI app under daphne, driven by Debian's Chromium.

The server runs in its own process on the pytest test database, with this run's
Celery queue and channel-layer prefix, so the `celery_worker` fixture of the test
process runs its jobs and the worker's job updates reach the server's websockets.
Tests using `live_dashboard` must be transactional (`pytest.mark.live`): the
server only sees committed rows.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, connections

# Playwright's sync API drives the browser from an asyncio event loop that it runs
# in the main thread. Django's async-safety guard sees that running loop and
# raises SynchronousOnlyOperation when the test then reads or writes the ORM
# (fixtures, assertions on Job/AuditEntry rows) — although every such call is
# plain synchronous code in this thread and never runs inside the loop. The guard
# is a false alarm here, so it is switched off for the browser tests only (the
# server process does not inherit it: see `_server_env`).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url():
    """A DATABASE_URL for the test database this process uses (SQLite or PostgreSQL)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = db["NAME"]
        assert name and Path(name).is_absolute(), f"need a file test database, got {name!r}"
        # An absolute sqlite URL: settings.py then adds the same sqlite OPTIONS
        # (WAL, IMMEDIATE transactions, timeout) as in the test process.
        return f"sqlite:///{name}"
    assert db["ENGINE"] == "django.db.backends.postgresql", db["ENGINE"]
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{db['HOST']}{port}/{quote(db['NAME'], safe='')}"


def _server_env(database_url):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings_test",
        DOCKYARD_TEST_RUN_ID=settings.RUN_ID,  # same Celery queue and channel prefix
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DATABASE_URL=database_url,
        DASHBOARD_DEBUG="true",  # static files through whitenoise's finders
        DOCKYARD_TEST_IMAGE=settings.TEST_IMAGE,
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_for_port(port, proc, log_path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"daphne exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen on {port}:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def live_dashboard(django_db_setup, tmp_path_factory):
    """Base URL of the dashboard served by daphne (HTTP and websockets)."""
    database_url = _test_database_url()
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    daphne = Path(sys.executable).with_name("daphne")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
            cwd=ROOT,
            env=_server_env(database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_for_port(port, proc, log_path)
        yield type("Live", (), {"url": f"http://127.0.0.1:{port}", "log": log_path})
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class BrowserErrors(list):
    """Console errors and uncaught exceptions seen by the page, as text."""

    def record_console(self, msg):
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return
        self.append(f"console: {msg.text} ({url})")
        print(f"console error: {msg.text[:100]} ({url}:{(msg.location or {}).get('lineNumber')})")

    def record_exception(self, exc):
        self.append(f"pageerror: {exc}")


def _log_websocket(ws):
    print(f"ws open {ws.url}")
    ws.on("framereceived", lambda data: print(f"ws recv {ws.url}: {str(data)!r}"))
    ws.on("close", lambda _ws: print(f"ws closed {ws.url}"))


def _log_response(response):
    if "/static/" not in response.url:
        print(f"http {response.request.method} {response.url} -> {response.status}")


@pytest.fixture
def browser_page(live_dashboard):
    """A Chromium page (1400px wide) on the live dashboard; `page.errors` collects JS errors."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(base_url=live_dashboard.url, viewport=VIEWPORT)
            context.set_default_timeout(10_000)
            page = context.new_page()
            errors = BrowserErrors()
            page.on("console", errors.record_console)
            page.on("pageerror", errors.record_exception)
            page.errors = errors
            # Shown with a failing test's captured output: what the sockets did.
            page.on("websocket", _log_websocket)
            page.on("response", _log_response)
            yield page
            context.close()
        finally:
            # Playwright runs this thread in a context of its own, and Django's
            # connections are context-local: what the test opened in it would be
            # orphaned, never closed, when Playwright exits (on PostgreSQL, keeping the
            # test database from being dropped). Browser tests are transactional.
            if not connection.in_atomic_block:
                connections.close_all()
            browser.close()
