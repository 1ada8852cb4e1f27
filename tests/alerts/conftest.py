"""A real SMTP server (aiosmtpd) in the test process, and helpers to fire rules.

`smtp` is one server per module on 127.0.0.1 and a free port; a test can stop it
(the port refuses connections), start it again on the same port, make it answer
4xx/5xx, or hold a conversation at RCPT or DATA until told to go on.
"""

import asyncio
import email
import email.policy
import socket
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from alerts.models import AlertRule
from monitoring.models import Sample
from monitoring.signals import sweep_done


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler:
    """Records every accepted message; `mode` says how to answer."""

    def __init__(self):
        self.messages = []
        self.mode = "ok"  # ok | tempfail | permfail | hold_rcpt | hold_data
        self.holding = threading.Event()  # set while a conversation is held
        self.release = threading.Event()

    async def _hold(self):
        self.holding.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "permfail":
            return "550 5.1.1 no such mailbox"
        if self.mode == "tempfail":
            return "451 4.3.0 try again later"
        if self.mode == "hold_rcpt":
            await self._hold()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "hold_data":
            # As a real MTA: the message is taken (queued) before the answer is sent.
            self.messages.append(self._parse(envelope))
            await self._hold()
            return "250 OK queued"
        self.messages.append(self._parse(envelope))
        return "250 OK"

    @staticmethod
    def _parse(envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        return {"to": list(envelope.rcpt_tos), "msg": msg}


class SMTPServer:
    def __init__(self):
        self.port = free_port()
        self.handler = Handler()
        self.controller = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.handler.release.set()
            self.controller.stop()
            self.controller = None

    def reset(self):
        self.handler.messages.clear()
        self.handler.mode = "ok"
        self.handler.holding.clear()
        self.handler.release.clear()

    @property
    def messages(self):
        return self.handler.messages

    def to(self, address):
        return [m["msg"] for m in self.messages if address in m["to"]]


@pytest.fixture(scope="module")
def smtp_server():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, settings):
    """The module's SMTP server, configured as the dashboard's mail server for one test."""
    if smtp_server.controller is None:
        smtp_server.start()
    smtp_server.reset()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    settings.EMAIL_CONFIGURED = True
    settings.DEFAULT_FROM_EMAIL = "dockyard@example.test"
    settings.DASHBOARD_BASE_URL = "https://dockyard.example.test"
    settings.ALERT_EMAIL_BATCH_SECONDS = 0
    settings.ALERT_EMAIL_RETRY_BASE_SECONDS = 0.2
    settings.ALERT_EMAIL_RETRY_MAX_SECONDS = 1
    settings.ALERT_EMAIL_RATE_PER_HOUR = 0
    yield smtp_server
    smtp_server.handler.release.set()


@pytest.fixture
def no_kick(monkeypatch):
    """Queued emails send no Celery task: the test plays the delivery worker itself."""
    from alerts.tasks import deliver_due

    monkeypatch.setattr(deliver_due, "apply_async", lambda *a, **k: None)


def metric_rule(team, name="hot-cpu", **extra):
    fields = {
        "name": name,
        "team": team,
        "metric": "cpu_percent",
        "op": ">",
        "threshold": 50,
        "window_seconds": 30,
        "for_seconds": 0,
        "send_resolved": True,
        "recipients": ["ops@example.test"],
        **extra,
    }
    return AlertRule.objects.create(**fields)


def sweep(container, **values):
    """One collector sweep as the monitoring app stores and announces it."""
    now = timezone.now()
    Sample.objects.filter(container=container).delete()
    Sample.objects.create(container=container, host=container.host, at=now, **values)
    sweep_done.send(sender=None, host_id=container.host_id, at=now, container_ids=[container.pk])


def wait_for(predicate, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")
