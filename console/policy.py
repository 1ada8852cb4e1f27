"""What a console may run, and as whom: validated server-side for the page and the socket.

Operators (the container action "exec") get a tty exec of a command of their choice.
Dashboard admins only: privileged exec, and exec as another user than the one the
container runs as when that user is not root (a non-admin cannot become root, or
anyone else, in a container that dropped root).
"""

import re
import shlex
from dataclasses import dataclass

DEFAULT_COMMAND = "/bin/sh"
MAX_COMMAND = 512
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"
USER_RE = re.compile(rf"^{_NAME}(:{_NAME})?$")


class Invalid(ValueError):
    pass


@dataclass(frozen=True)
class Options:
    command: str = DEFAULT_COMMAND
    user: str = ""  # "" = the container's own user
    privileged: bool = False
    cols: int = 80
    rows: int = 24

    @property
    def argv(self):
        return shlex.split(self.command)


def _size(value, default, top):
    if value in (None, ""):
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 4):
        raise Invalid("The terminal size must be a number.")
    return min(max(int(value), 1), top)


def parse(get):
    """Options from a query (a `get(name)` callable); raises Invalid with a readable reason."""
    command = (get("cmd") or "").strip() or DEFAULT_COMMAND
    if len(command) > MAX_COMMAND or "\x00" in command:
        raise Invalid(f"The command must be at most {MAX_COMMAND} characters.")
    try:
        if not shlex.split(command):
            raise Invalid("Give a command.")
    except ValueError as exc:
        raise Invalid(f"The command cannot be read: {exc}.") from None
    user = (get("user") or "").strip()
    if user and not USER_RE.match(user):
        raise Invalid("The user must be a name or id, optionally with :group.")
    privileged = (get("privileged") or "") in ("1", "on", "true")
    return Options(
        command=command,
        user=user,
        privileged=privileged,
        cols=_size(get("cols"), 80, 500),
        rows=_size(get("rows"), 24, 200),
    )


def is_root(user):
    return user.partition(":")[0] in ("root", "0")


def needs_admin(options, configured_user):
    """Does this session need a dashboard admin? `configured_user` is the container's User."""
    if options.privileged:
        return True
    if not options.user:
        return False  # the container's own user
    configured = (configured_user or "").strip()
    if not configured or is_root(configured):
        return False  # the container runs as root already: no user is more than that
    return options.user != configured
