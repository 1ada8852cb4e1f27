"""Private scratch folders of a killed process are removed by the next one that makes one."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from dashboard import scratch

ROOT = Path(__file__).resolve().parents[2]
MAKE_AND_WAIT = (
    "import sys, time; from dashboard import scratch;"
    "print(scratch.private_dir(sys.argv[1]), flush=True); time.sleep(60)"
)


def _holder(prefix):
    """A real process that made a private folder and is still alive: (process, folder)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", MAKE_AND_WAIT, prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def test_a_sigkilled_processs_folder_goes_a_live_ones_stays():
    prefix = f"dockyard-scratchtest-{os.getpid()}x"
    dead, dead_folder = _holder(prefix)
    live, live_folder = _holder(prefix)
    mine = None
    try:
        secret = Path(dead_folder) / "config.json"
        secret.write_text('{"auths": {"r": {"auth": "secret"}}}')
        assert oct(os.stat(dead_folder).st_mode & 0o777) == "0o700"
        dead.send_signal(signal.SIGKILL)  # no finally-block of its runs
        dead.wait(timeout=10)
        assert secret.exists()

        mine = scratch.private_dir(prefix)

        assert not os.path.exists(dead_folder)
        assert os.path.isdir(live_folder)  # its process may still need it
        assert os.path.basename(mine).startswith(f"{prefix}{os.getpid()}-")
    finally:
        for proc in (dead, live):
            proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()
        for folder in (dead_folder, live_folder, mine):
            if folder and folder.startswith(tempfile.gettempdir()):
                shutil.rmtree(folder, ignore_errors=True)
