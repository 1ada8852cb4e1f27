"""Websocket /ws/containers/<pk>/exec/: a recorded tty exec in a container.

Refused before accept: anonymous (4401), a container the user cannot see (4404),
no "exec" right or options that need a dashboard admin (4403), bad options (4400).
Access is re-checked on role changes and on a timer (AccessCheckedConsumer): a
demoted user is cut off (4403) and the process ended.

Frames: the browser sends text JSON, {"t": "i", "d": "<typed>"} or
{"t": "r", "c": cols, "r": rows}; the server sends the terminal's output as binary
frames, and text JSON {"t": "exit", "code": n} or {"t": "error", "message": "…"}.
"""

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.utils import timezone

from containers.inspect import mask_credentials
from containers.models import Container
from dashboard import access
from dashboard.audit import Actor, client_ip, record
from dashboard.consumers import AccessCheckedConsumer
from dashboard.engine import EngineError, engine
from dashboard.models import AuditEntry

from . import policy
from .execs import ExecSession
from .models import ConsoleSession
from .recording import Recorder

log = logging.getLogger(__name__)
MAX_FRAME = 64 * 1024
CONNECTION_LOST = (
    "Connection lost: the engine went away and the shell with it. Press Connect to start a new one."
)


class ExecConsumer(AccessCheckedConsumer):
    session = None
    entry = None
    row = None
    _ending = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.pk = self.scope["url_route"]["kwargs"]["pk"]
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        code, error = await self._authorize(lambda name: (query.get(name) or [""])[0])
        if code:
            await self.close(code=code)
            return
        await self.accept()
        if error:  # allowed, but the engine says no (not running, unreachable)
            await self._send_control({"t": "error", "message": error})
            await self.close(code=4409)
            return
        await self.start_access_watch()
        self.loop = asyncio.get_running_loop()
        self.writer = ThreadPoolExecutor(max_workers=1)  # keeps typed input in order
        error = await self._start()
        if error:
            await self._send_control({"t": "error", "message": error})
            await self.close(code=4502)
            await self._end("failed to start")
            return
        threading.Thread(target=self._pump, name=f"console-{self.pk}", daemon=True).start()

    @database_sync_to_async
    def _authorize(self, get):
        """(close code, None) to refuse; (0, engine error or None) to go on."""
        user = access.fresh_user(self.scope["user"])
        if user is None:
            return 4401, None
        container = (
            access.restrict(user, Container.objects.select_related("host", "team"), "view")
            .filter(pk=self.pk)
            .first()
        )
        if container is None:
            return 4404, None
        if not access.can(user, container, "exec"):
            return 4403, None
        try:
            self.options = policy.parse(get)
        except policy.Invalid:
            return 4400, None
        self.user, self.container = user, container
        self.admin_only = self.options.privileged
        if self.admin_only and not access.is_admin(user):
            return 4403, None
        try:
            with engine(container.host) as client:
                info = client.api.inspect_container(container.docker_id)
        except EngineError as exc:
            return 0, exc.message
        self.admin_only = policy.needs_admin(self.options, info["Config"].get("User"))
        if self.admin_only and not access.is_admin(user):
            return 4403, None
        if not info["State"].get("Running") or info["State"].get("Paused"):
            return 0, f"{container.name} is not running."
        return 0, None

    @database_sync_to_async
    def check_access(self):
        if getattr(self, "row", None) is not None:
            ConsoleSession.objects.filter(pk=self.row.pk).update(last_seen=timezone.now())
        user = access.fresh_user(self.scope["user"])
        if user is None or not access.can(user, self.container, "exec"):
            return False
        return not self.admin_only or access.is_admin(user)

    async def access_changed(self, event):
        if self._ending is None and not await self.check_access():
            await self.close(code=4403)
            await self._end("cut off: access revoked")

    @database_sync_to_async
    def _intent(self):
        actor = Actor(self.user, self._client_ip())
        opts = self.options
        self.entry = record(
            actor,
            "container.exec",
            target=self.container,
            params={
                "command": mask_credentials(opts.command),
                "user": opts.user,
                "privileged": opts.privileged,
            },
            result=AuditEntry.Result.PENDING,
        )
        self.recorder = Recorder(opts.cols, opts.rows, mask_credentials(opts.command))
        self.row = ConsoleSession.objects.create(
            container=self.container,
            container_name=self.container.name,
            user=self.user,
            username=self.user.get_username(),
            command=opts.command,
            exec_user=opts.user,
            privileged=opts.privileged,
            started_at=timezone.now(),
            last_seen=timezone.now(),
            audit_entry_id=self.entry.pk,
        )

    def _client_ip(self):
        """The audit address, by the same rules as for a request (trusted proxies only)."""
        peer = (self.scope.get("client") or [None])[0]
        headers = dict(self.scope.get("headers") or [])
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        meta = {"REMOTE_ADDR": peer or "", "HTTP_X_FORWARDED_FOR": forwarded}
        return client_ip(SimpleNamespace(META=meta))

    async def _start(self):
        """Audit intent, then the exec; returns an error message or None."""
        await self._intent()
        opts = self.options
        self.session = ExecSession(
            self.container.host,
            self.container.docker_id,
            opts.argv,
            user=opts.user,
            privileged=opts.privileged,
            cols=opts.cols,
            rows=opts.rows,
        )
        try:
            await asyncio.to_thread(self.session.start)
        except EngineError as exc:
            self.start_error = exc.message
            return exc.message
        return None

    def _pump(self):
        """Engine → browser, in a thread; ends the session when the process ends."""
        try:
            self.session.read_loop(self._output)
        finally:
            self._call_soon(self._process_ended)

    def _output(self, data):
        self.recorder.add("o", data)
        self._call_soon(self.send, bytes_data=data)

    def _call_soon(self, coroutine_function, **kwargs):
        # From the reader thread; after the session ended the loop may be gone.
        if self._ending is not None or self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(coroutine_function(**kwargs), self.loop)
        except RuntimeError:
            pass

    async def _process_ended(self):
        if self._ending is not None:
            return  # we are ending it
        try:
            _alive, code = await asyncio.to_thread(self.session.running)
        except EngineError:
            code = None  # the engine went away with the stream
        if code is None:
            await self._send_control({"t": "error", "message": CONNECTION_LOST})
        else:
            await self._send_control({"t": "exit", "code": code})
        await self.close(code=1000)
        await self._end("process exited")

    async def receive(self, text_data=None, bytes_data=None):
        if self._ending is not None or self.session is None or self.session.sock is None:
            return
        if bytes_data is not None:
            data = bytes_data[:MAX_FRAME]
            await self._type(data)
            return
        try:
            message = json.loads(text_data[:MAX_FRAME])
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict):
            return
        if message.get("t") == "i" and isinstance(message.get("d"), str):
            await self._type(message["d"].encode())
        elif message.get("t") == "r":
            cols, rows = message.get("c"), message.get("r")
            if isinstance(cols, int) and isinstance(rows, int):
                cols, rows = min(max(cols, 1), 500), min(max(rows, 1), 200)
                self.recorder.resize(cols, rows)
                try:
                    await asyncio.to_thread(self.session.resize, cols, rows)
                except EngineError:
                    pass

    async def _type(self, data):
        self.recorder.add("i", data)
        try:
            await self.loop.run_in_executor(self.writer, self.session.send, data)
        except OSError:
            pass

    async def _send_control(self, message):
        await self.send(text_data=json.dumps(message))

    async def disconnect(self, code):
        await self._end("closed by the browser")

    async def _end(self, reason):
        """End the session once, whoever asks first; waits for it to be over."""
        if self.entry is None and self.session is None:
            await self.stop_access_watch()
            return
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._finish(reason))
        await asyncio.shield(self._ending)

    async def _finish(self, reason):
        await self.stop_access_watch()
        code, killed, alive = None, 0, False
        if self.session is not None and getattr(self, "start_error", None) is None:
            try:
                code, killed, alive = await asyncio.to_thread(self.session.close)
            except EngineError as exc:
                alive, reason = True, f"{reason}; could not end the process: {exc.message}"
        if getattr(self, "writer", None) is not None:
            self.writer.shutdown(wait=False)
        await self._save(reason, code, killed, alive)

    @database_sync_to_async
    def _save(self, reason, code, killed, alive):
        ended = timezone.now()
        failed = getattr(self, "start_error", None)
        if self.row is not None:
            row = self.row
            row.ended_at = ended
            row.recording = self.recorder.gzipped()
            row.recording_truncated = self.recorder.truncated
            row.save(update_fields=["ended_at", "recording", "recording_truncated"])
            seconds = (ended - row.started_at).total_seconds()
        else:
            seconds = 0
        if self.entry is None:
            return
        if failed:
            self.entry.complete(AuditEntry.Result.FAILED, failed)
            return
        parts = [f"session of {seconds:.1f} s, {reason}"]
        if code is not None:
            parts.append(f"exit code {code}")
        if killed:
            parts.append(f"{killed} left-over process{'es' if killed > 1 else ''} killed")
        if alive:
            parts.append("the process may still be running")
        self.entry.complete(AuditEntry.Result.OK, "; ".join(parts))
