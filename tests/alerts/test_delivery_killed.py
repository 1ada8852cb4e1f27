"""A delivery worker SIGKILLed mid-delivery duplicates nothing.

The worker is a real process (`manage.py send_alert_emails` on the test database);
the SMTP server holds its conversation at a chosen point, the test kills the process
there, and a later delivery (after the lease ran out) shows what recovery does:
- killed before the message was handed over (held at RCPT): sent again, once;
- killed after the server took the message (held before its answer to DATA): the
  row is `unconfirmed` and not sent again, so the message exists exactly once.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from alerts import outbox
from alerts.models import Notification
from tests.faults.conftest import database_url

from .conftest import metric_rule, sweep, wait_for

pytestmark = [pytest.mark.live]

LEASE = 1


def start_worker(smtp):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings_test",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "DASHBOARD_FERNET_KEY": settings.FERNET_KEY,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
        "DEFAULT_FROM_EMAIL": "dockyard@example.test",
        "ALERT_EMAIL_BATCH_SECONDS": "0",
        "ALERT_EMAIL_LEASE_SECONDS": str(LEASE),
        "ALERT_EMAIL_RATE_PER_HOUR": "0",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "send_alert_emails"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.parametrize("hold", ["hold_rcpt", "hold_data"])
def test_worker_killed_mid_delivery_duplicates_nothing(cast, make_container, smtp, no_kick, hold):
    c = make_container(owner=cast.owner, team=cast.alpha)
    metric_rule(cast.alpha, recipients=["oncall@example.test"])
    sweep(c, cpu_percent=99)
    row = Notification.objects.get()

    smtp.handler.mode = hold
    proc = start_worker(smtp)
    try:
        wait_for(smtp.handler.holding.is_set, 30, f"the worker's conversation is held ({hold})")
        row.refresh_from_db()
        assert row.status == "sending"
        assert (row.handed_over_at is not None) == (hold == "hold_data")
    finally:
        kill(proc)
    smtp.handler.release.set()
    smtp.handler.mode = "ok"

    time.sleep(LEASE + 0.2)  # the dead worker's lease runs out
    for _ in range(3):
        outbox.deliver_due()
    row.refresh_from_db()
    got = smtp.to("oncall@example.test")
    assert len(got) == 1, [m["Message-ID"] for m in got]
    assert got[0]["Message-ID"] == row.message_id
    if hold == "hold_rcpt":
        assert row.status == "sent" and row.attempts == 2
    else:
        assert row.status == "unconfirmed"
        assert "not sent again" in row.last_error
