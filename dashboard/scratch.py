"""Private scratch folders (TLS keys, a compose run's registry logins, git's askpass)
that do not outlive a crash.

Each folder is removed by the code that made it when it is done; a process killed
in between (SIGKILL, the OOM killer) cannot do that, and its folder would keep
those secrets on disk. The folder's name says which process made it, and making
a new one first removes those whose process is gone.
"""

import os
import shutil
import tempfile

__all__ = ["private_dir", "sweep"]


def private_dir(prefix):
    """A new 0700 folder `<tmp>/<prefix><pid>-<random>`; folders with the same prefix
    left by dead processes are removed first."""
    sweep(prefix)
    folder = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")
    os.chmod(folder, 0o700)
    return folder


def sweep(prefix):
    """Remove `<tmp>/<prefix><pid>-*` folders whose process no longer exists."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid, sep, _rest = name[len(prefix) :].partition("-")
        if not (sep and pid.isdigit()) or _alive(int(pid)):
            continue
        path = os.path.join(base, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: not ours to judge
    return True
