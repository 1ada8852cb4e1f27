"""The recorded console: /ws/containers/<pk>/exec/ through the real ASGI stack, a real
engine and the real Redis layer; the console and replay pages."""

import asyncio
import json
import secrets
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from console.models import ConsoleSession
from dashboard import live
from dashboard.asgi import application
from dashboard.models import AuditEntry, Membership, Role
from tests.dashboard.test_job_websocket import ORIGIN, session_cookie

pytestmark = [pytest.mark.live]
TIMEOUT = 10


def url(container, query="cmd=/bin/sh"):
    return f"/ws/containers/{container.pk}/exec/?{query}"


def headers(user, origin=ORIGIN):
    return [h for h in (origin, session_cookie(user) if user else None) if h]


async def typed(comm, text):
    await comm.send_to(text_data=json.dumps({"t": "i", "d": text}))


async def read_until(comm, needle, timeout=TIMEOUT):
    """Terminal output until `needle` shows up; the output so far."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not in {seen!r}"
        try:
            message = await comm.receive_output(timeout=left)
        except TimeoutError:
            raise AssertionError(f"{needle!r} not in {seen!r}") from None
        assert message["type"] == "websocket.send", (message, seen)
        if message.get("bytes"):
            seen += message["bytes"]
        else:
            seen += message["text"].encode()
    return seen.decode(errors="replace")


def connect_result(user, container, query="cmd=/bin/sh", origin=ORIGIN):
    sent = headers(user, origin)

    async def attempt():
        comm = WebsocketCommunicator(application, url(container, query), sent)
        connected, code = await comm.connect(timeout=TIMEOUT)
        await comm.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def processes(docker_client, container):
    top = docker_client.api.top(container.docker_id)
    column = top["Titles"].index("CMD")
    return [p[column] for p in top["Processes"]]


@pytest.fixture
def box(cast, make_container):
    return make_container(owner=cast.owner, team=cast.alpha)


def run_session(user, container, lines, query="cmd=/bin/sh", expect=None):
    """Open a console, type each line and wait for `expect` (or a prompt), close; the output."""

    sent = headers(user)

    async def session():
        comm = WebsocketCommunicator(application, url(container, query), sent)
        connected, code = await comm.connect(timeout=TIMEOUT)
        assert connected, code
        out = ""
        for line, wait_for in lines:
            await typed(comm, line)
            out += await read_until(comm, wait_for)
        await comm.disconnect()
        return out

    return async_to_sync(session)()


def test_typed_command_runs_and_is_recorded_and_audited(cast, box, login, dashadmin):
    token = secrets.token_hex(4)
    # The output (hello-42-<token>) differs from what is typed (echo hello-$((6*7))-…).
    out = run_session(cast.operator, box, [(f"echo hello-$((6*7))-{token}\n", f"hello-42-{token}")])
    assert f"hello-42-{token}" in out

    entry = AuditEntry.objects.get(action="container.exec", target_id=box.docker_id)
    assert entry.username == "operator" and entry.team == cast.alpha
    assert entry.result == AuditEntry.Result.OK and entry.completed_at is not None
    assert entry.params["command"] == "/bin/sh"
    assert "session of" in entry.message and " s, closed by the browser" in entry.message

    session = ConsoleSession.objects.get(audit_entry_id=entry.pk)
    assert session.user == cast.operator and session.container == box
    assert session.ended_at is not None and session.duration > 0
    header = json.loads(session.cast().splitlines()[0])
    assert header["version"] == 2 and header["width"] == 80
    events = session.events()
    typed_in = "".join(e[2] for e in events if e[1] == "i")
    shown = "".join(e[2] for e in events if e[1] == "o")
    assert f"echo hello-$((6*7))-{token}" in typed_in
    assert f"hello-42-{token}" in shown
    times = [e[0] for e in events]
    assert times == sorted(times) and times[-1] > times[0]
    first_in = next(e[0] for e in events if e[1] == "i")
    answer = next(e[0] for e in events if e[1] == "o" and f"hello-42-{token}" in e[2])
    assert answer >= first_in

    # Replay: dashboard admins only (recordings may hold secrets); 404 for the rest.
    replay = reverse("containers:console_replay", args=[entry.pk])
    cast_url = reverse("containers:console_recording", args=[entry.pk])
    for admin in (cast.admin, dashadmin):
        client = login(admin)
        page = client.get(replay)
        assert page.status_code == 200 and cast_url.encode() in page.content
        policy = dict(d.strip().split(" ", 1) for d in page["Content-Security-Policy"].split(";"))
        assert policy["script-src"] == "'self'"
        recording = client.get(cast_url)
        assert recording.status_code == 200 and f"hello-42-{token}".encode() in recording.content
        audit = client.get(reverse("audit"))
        assert replay.encode() in audit.content
    for who in ("operator", "owner", "viewer", "teamadmin", "outsider"):
        client = login(getattr(cast, who))
        assert client.get(replay).status_code == 404, who
        assert client.get(cast_url).status_code == 404, who
        assert replay.encode() not in client.get(reverse("audit")).content


def test_closing_the_socket_leaves_no_process(cast, box, docker_client):
    # A foreground job the shell's EOF cannot end: the session's end must kill it.
    run_session(cast.operator, box, [("sleep 4321 &\n", "# "), ("sleep 1234\n", "sleep 1234")])
    left = processes(docker_client, box)
    assert not [p for p in left if "1234" in p or "4321" in p or p == "/bin/sh"], left
    entry = AuditEntry.objects.get(action="container.exec", target_id=box.docker_id)
    assert entry.result == AuditEntry.Result.OK


def test_process_exit_ends_the_session(cast, box):
    sent = headers(cast.operator)

    async def session():
        comm = WebsocketCommunicator(application, url(box), sent)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        await typed(comm, "exit 3\n")
        while True:
            message = await comm.receive_output(timeout=TIMEOUT)
            if message["type"] == "websocket.close":
                break
            if message.get("text"):
                control = json.loads(message["text"])
        await comm.disconnect()
        return control

    assert async_to_sync(session)() == {"t": "exit", "code": 3}
    entry = AuditEntry.objects.get(action="container.exec", target_id=box.docker_id)
    assert "process exited" in entry.message and "exit code 3" in entry.message


@pytest.mark.parametrize("who", [None, "outsider", "viewer"])
def test_refused_before_accept(cast, box, who):
    user = getattr(cast, who) if who else None
    connected, code = connect_result(user, box)
    assert connected is False
    assert code == {None: 4401, "outsider": 4404, "viewer": 4403}[who]
    assert not AuditEntry.objects.filter(action="container.exec").exists()


@pytest.mark.parametrize("origin", [(b"origin", b"http://evil.example.com"), None])
def test_foreign_or_missing_origin_is_refused(cast, box, origin):
    connected, _ = connect_result(cast.operator, box, origin=origin)
    assert connected is False


@pytest.mark.parametrize("query", ["cmd=%22unclosed", "user=root;rm", "cols=abc"])
def test_bad_options_are_refused(cast, box, query):
    connected, code = connect_result(cast.operator, box, query)
    assert (connected, code) == (False, 4400)


def test_operator_may_not_exec_privileged(cast, box):
    connected, code = connect_result(cast.operator, box, "cmd=/bin/sh&privileged=1")
    assert (connected, code) == (False, 4403)


@pytest.mark.parametrize("exec_user", ["root", "0", "0:0", "root:1000", "1001"])
def test_operator_may_not_exec_as_another_user(cast, make_container, exec_user):
    box = make_container(owner=cast.owner, team=cast.alpha, user="1000")
    connected, code = connect_result(cast.operator, box, f"cmd=/bin/sh&user={exec_user}")
    assert (connected, code) == (False, 4403)


def test_operator_runs_as_the_containers_user_and_admin_as_root(cast, make_container):
    box = make_container(owner=cast.owner, team=cast.alpha, user="1000")
    out = run_session(cast.operator, box, [("echo uid-$(id -u)-\n", "uid-1000-")])
    assert "uid-1000-" in out
    out = run_session(cast.admin, box, [("echo uid-$(id -u)-\n", "uid-0-")], "cmd=/bin/sh&user=0")
    assert "uid-0-" in out
    entries = AuditEntry.objects.filter(action="container.exec").order_by("at")
    assert [(e.username, e.params["user"]) for e in entries] == [("operator", ""), ("admin", "0")]


def test_demoted_user_is_cut_off_and_the_process_ended(cast, box, docker_client, settings):
    settings.ACCESS_RECHECK_SECONDS = 60  # only the push can close it in time

    def demote():
        Membership.objects.filter(user=cast.operator).update(role=Role.VIEWER)
        live.access_changed([cast.operator.pk])

    sent = headers(cast.operator)

    async def session():
        comm = WebsocketCommunicator(application, url(box), sent)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        await typed(comm, "sleep 2345\n")
        await read_until(comm, "sleep 2345")
        await database_sync_to_async(demote)()
        started = time.monotonic()
        while True:
            message = await comm.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
        took = time.monotonic() - started
        # Typing after the cut reaches nothing.
        await typed(comm, "echo still-here\n")
        await asyncio.sleep(0.2)
        await comm.disconnect()
        return message["code"], took

    code, took = async_to_sync(session)()
    assert code == 4403 and took < 5
    assert not [p for p in processes(docker_client, box) if "2345" in p or p == "/bin/sh"]
    entry = AuditEntry.objects.get(action="container.exec", target_id=box.docker_id)
    assert "cut off: access revoked" in entry.message
    assert "still-here" not in ConsoleSession.objects.get(audit_entry_id=entry.pk).cast()


def test_console_page_access(cast, box, login):
    page = reverse("containers:console", args=[box.pk])
    detail = reverse("containers:detail", args=[box.pk])
    for who, status in [("operator", 200), ("admin", 200), ("viewer", 403), ("outsider", 404)]:
        client = login(getattr(cast, who))
        response = client.get(page)
        assert response.status_code == status, who
        shown = client.get(detail)
        if status == 200:
            assert b"js/console.js" in response.content and b"<script>" not in response.content
            assert page.encode() in shown.content
        elif who == "viewer":
            assert page.encode() not in shown.content
    assert b'name="privileged"' in login(cast.admin).get(page).content
    assert b'name="privileged"' not in login(cast.operator).get(page).content


@pytest.mark.parametrize(
    "proxies, expected", [(0, "10.0.0.9"), (1, "203.0.113.7")], ids=["direct", "behind-proxy"]
)
def test_audit_address_follows_the_trusted_proxy_rules(cast, box, settings, proxies, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    sent = [*headers(cast.operator), (b"x-forwarded-for", b"203.0.113.7")]

    async def session():
        comm = WebsocketCommunicator(application, url(box), sent)
        comm.scope["client"] = ["10.0.0.9", 40000]
        assert (await comm.connect(timeout=TIMEOUT))[0]
        await comm.disconnect()

    async_to_sync(session)()
    assert AuditEntry.objects.get(action="container.exec").source_ip == expected


def test_demoted_dashboard_admin_loses_a_root_session(cast, make_container, settings):
    """Still an operator, but exec as root in a non-root container was an admin's right."""
    from dashboard.models import Profile

    settings.ACCESS_RECHECK_SECONDS = 0.5
    Profile.objects.create(user=cast.operator, dashboard_admin=True)
    box = make_container(owner=cast.owner, team=cast.alpha, user="1000")
    sent = headers(cast.operator)

    async def session():
        comm = WebsocketCommunicator(application, url(box, "cmd=/bin/sh&user=0"), sent)
        assert (await comm.connect(timeout=TIMEOUT))[0]
        await database_sync_to_async(
            lambda: Profile.objects.filter(user=cast.operator).update(dashboard_admin=False)
        )()
        while (message := await comm.receive_output(timeout=5))["type"] != "websocket.close":
            pass
        await comm.disconnect()
        return message["code"]

    assert async_to_sync(session)() == 4403
