"""`make run` says in one sentence what is missing instead of failing later."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_script(**env):
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        cwd=ROOT,
    )


def test_no_engine_on_the_socket_is_one_clear_sentence():
    result = run_script(DASHBOARD_LOCAL_DOCKER="unix:///tmp/dockyard-no-such.sock")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "No Docker engine is listening on unix:///tmp/dockyard-no-such.sock: start dockerd "
        "(e.g. 'systemctl start docker' or 'dockerd &')."
    ]
    assert "Traceback" not in result.stdout + result.stderr
