"""Benchmark: a stack deploy through the dashboard vs `docker-compose up -d`.

Target: deploying a 10-service stack through the dashboard costs at most 1.2x
`docker-compose up -d` of the same file on the same engine, measured in the same run.

    scripts/testenv.sh up            # dockerd and dockyard-test/busybox:latest
    .venv/bin/python benchmarks/stacks.py [--services 10] [--rounds 5]

Each round times, in alternating order, (a) `docker-compose -p <project> up -d` of the
file, run by hand in a scratch directory, and (b) the dashboard's deploy of the same
file as a team operator: the create form's check (YAML, policy, `docker-compose
config`, ports), the stack and version rows, and the deploy job as the worker runs
it (`jobs.run`: normalise and check again, write the checked model, `up -d`, then
record every container by id and refresh the mirror). Only the broker hop to the
Celery worker is left out. Each project is taken down (untimed) before the next.
Everything it made is removed at the end, also on error or Ctrl-C.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
BENCH_LABEL = "bench.dockyard-stacks"  # dockyard.* labels are reserved to the dashboard


def configure(tmp):
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["STACKS_ROOT"] = str(tmp / "stacks")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def compose_file(services, run_id):
    lines = ["services:"]
    for n in range(services):
        lines += [
            f"  svc{n}:",
            f"    image: {IMAGE}",
            '    command: ["sh", "-c", "trap \'exit 0\' TERM; sleep 3600 & wait"]',
            f'    labels: {{{BENCH_LABEL}: "{run_id}", dockyard.test: "1"}}',
        ]
    return "\n".join(lines) + "\n"


def compose_env():
    from stacks.compose import SAFE_PATH

    return {
        "PATH": SAFE_PATH,
        "HOME": tempfile.gettempdir(),
        "DOCKER_HOST": "unix:///var/run/docker.sock",
    }


def raw_up(binary, folder, project):
    started = time.perf_counter()
    subprocess.run(
        [binary, "-p", project, "-f", str(folder / "compose.yaml"), "up", "-d"],
        env=compose_env(),
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def down(binary, project):
    subprocess.run(
        [binary, "-p", project, "down", "-v", "--remove-orphans", "-t", "1"],
        env=compose_env(),
        cwd=tempfile.gettempdir(),
        capture_output=True,
    )


def dashboard_deploy(actor, host, team, name, text):
    from dashboard import jobs
    from stacks import services

    started = time.perf_counter()
    stack, job = services.create_stack(
        actor, host=host, team=team, name=name, source="editor", compose_text=text
    )
    job = jobs.run(job.pk)
    elapsed = time.perf_counter() - started
    if job.status != "succeeded":
        raise SystemExit(f"dashboard deploy failed: {job.message}\n{job.output}")
    return elapsed, stack.project


def cleanup(projects):
    import docker

    from stacks.compose import binary

    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41")
    for project in projects:
        down(binary(), project)
    run_id = os.environ.get("BENCH_RUN_ID", "")
    for c in client.api.containers(all=True, filters={"label": f"{BENCH_LABEL}={run_id}"}):
        try:
            client.api.remove_container(c["Id"], force=True)
        except docker.errors.APIError:
            pass
    # A `down` that lost a race with the engine may leave a project's network behind.
    for project in projects:
        label = {"label": f"com.docker.compose.project={project}"}
        for net in client.api.networks(filters=label):
            try:
                client.api.remove_network(net["Id"])
            except docker.errors.APIError:
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-stacks-"))
    run_id = os.urandom(4).hex()
    os.environ["BENCH_RUN_ID"] = run_id
    configure(tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    from django.contrib.auth import get_user_model

    from dashboard.audit import Actor
    from dashboard.models import Host, Membership, Role, Team
    from stacks.compose import binary

    host = Host.objects.create(name="local", url="unix:///var/run/docker.sock", all_teams=True)
    team = Team.objects.create(name="bench")
    user = get_user_model().objects.create_user("operator", password="x")
    Membership.objects.create(user=user, team=team, role=Role.OPERATOR)
    actor = Actor(user, "127.0.0.1")
    text = compose_file(args.services, run_id)
    folder = tmp / "raw"
    folder.mkdir()
    (folder / "compose.yaml").write_text(text)
    compose = binary()
    projects, raw, dash = [], [], []
    try:
        # One untimed deploy of each kind: the image cache and the binary are warm.
        projects.append(f"bench-raw-{run_id}-warm")
        raw_up(compose, folder, projects[-1])
        _t, project = dashboard_deploy(actor, host, team, "warm", text)
        projects.append(project)
        for project in projects:
            down(compose, project)
        for n in range(args.rounds):
            order = ("raw", "dash") if n % 2 == 0 else ("dash", "raw")
            for kind in order:
                if kind == "raw":
                    project = f"bench-raw-{run_id}-{n}"
                    projects.append(project)
                    raw.append(raw_up(compose, folder, project))
                else:
                    elapsed, project = dashboard_deploy(actor, host, team, f"s{n}", text)
                    projects.append(project)
                    dash.append(elapsed)
                down(compose, project)
            print(
                f"round {n + 1}: docker-compose up -d {raw[-1]:.2f} s, dashboard {dash[-1]:.2f} s",
                flush=True,
            )
    finally:
        cleanup(projects)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    raw_median, dash_median = statistics.median(raw), statistics.median(dash)
    print(
        f"{args.services} services, {args.rounds} rounds (medians): "
        f"docker-compose up -d {raw_median:.2f} s, dashboard {dash_median:.2f} s"
    )
    print(f"stack deploy via dashboard / docker-compose = {dash_median / raw_median:.2f}x")


if __name__ == "__main__":
    main()
