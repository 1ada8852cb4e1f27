"""Capture a running container's cgroup files as a parser fixture (run by hand, as root).

    python tests/monitoring/capture.py CONTAINER_ID OUT_DIR

Writes into OUT_DIR the cgroup files the collector reads (monitoring.cgroup.V1_FILES
or V2_FILES, by this machine's cgroup version), `proc_cgroup` (/proc/<pid>/cgroup),
`net_dev` (/proc/<pid>/net/dev) and `meta.json` (pid, time of the reading in ns,
cgroup version, the host's MemTotal). The files of tests/monitoring/fixtures/v1 were
made this way on the development machine; the v2 ones were written from the kernel's
documentation (Documentation/admin-guide/cgroup-v2.rst).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from monitoring import cgroup  # noqa: E402

ROOT = Path("/sys/fs/cgroup")


def main(container, out):
    pid = int(
        subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Pid}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    version = 2 if (ROOT / "cgroup.controllers").exists() else 1
    proc_cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    paths = cgroup.parse_proc_cgroup(proc_cgroup)
    t_ns = time.time_ns()
    for controller, name in cgroup.V1_FILES if version == 1 else cgroup.V2_FILES:
        folder = ROOT / controller / paths[controller].lstrip("/") if controller else ROOT
        if not controller:
            folder = ROOT / paths[""].lstrip("/")
        try:
            (out / name).write_text((folder / name).read_text())
        except OSError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
    (out / "proc_cgroup").write_text(proc_cgroup)
    (out / "net_dev").write_text(Path(f"/proc/{pid}/net/dev").read_text())
    meminfo = cgroup.parse_meminfo(Path("/proc/meminfo").read_text())
    meta = {"pid": pid, "t_ns": t_ns, "cgroup": version, "mem_total": meminfo[0]}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    os.sync()


if __name__ == "__main__":
    main(*sys.argv[1:3])
