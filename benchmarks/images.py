"""Benchmark: a pull through the dashboard vs `docker pull`.

Target: pulling a multi-layer image through the dashboard's pull handler (the real
code path: a Job row, the registry's stored credentials, per-layer progress written
to the job in batches, the audit intent, the mirror resync) takes at most 1.2x the
time of `docker pull` of the same image from the same registry, in the same run.

    scripts/testenv.sh up            # dockerd, Redis on 6390, dockyard-test/busybox:latest
    .venv/bin/python benchmarks/images.py [--rounds 5] [--layers 6] [--layer-mb 10]

It starts its own registry (Debian's docker-registry with htpasswd auth, through
tests/support/registry.py), builds an image FROM the test image with one RUN step
per layer writing random data (so nothing compresses or deduplicates), pushes it
with the registry's credentials, then, in alternating order each round, removes the
local copy and pulls it again: once through `images.services.request_pull` +
`dashboard.jobs.run`, once with the `docker` CLI logged in to a throwaway config
directory, after one untimed warm-up pull of each kind. The figure is the ratio of
the medians. Everything it made (the image,
the registry and its data, the temporary database and docker config) is removed at
the end, also on error or Ctrl-C. The last line is exactly
`pull via dashboard / docker pull = <r>x`.
"""

import argparse
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER_URL = "unix:///var/run/docker.sock"
API_VERSION = "1.41"


def configure(db_path):
    """Point Django at a fresh SQLite file, set it up and migrate it."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings_test"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")
    os.environ.setdefault("DOCKYARD_TEST_IMAGE", "dockyard-test/busybox:latest")
    os.environ.setdefault("DOCKYARD_TEST_RUN_ID", f"bench{uuid.uuid4().hex[:6]}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def build_image(client, base, tag, layers, layer_mb):
    """FROM the test image, one RUN per layer writing `layer_mb` MB of random data."""
    lines = [f"FROM {base}"]
    for i in range(layers):
        lines.append(f"RUN head -c {layer_mb * 1_000_000} /dev/urandom > /layer-{i}.bin")
    dockerfile = "\n".join(lines) + "\n"
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels={"dockyard.bench": "1"},
        rm=True,
        forcerm=True,
        nocache=True,
    )
    return image


def remove_local(api, tag):
    import docker

    try:
        api.remove_image(tag, force=True)
    except docker.errors.NotFound:
        pass


def dashboard_pull(actor, host, team, ref_text):
    from dashboard import jobs
    from images import services

    start = time.perf_counter()
    ref, registry = services.build_reference(actor.user, team, text=ref_text)
    job = services.request_pull(actor, host, team, ref, registry)
    job = jobs.run(job.pk)
    elapsed = time.perf_counter() - start
    if job.status != "succeeded":
        raise RuntimeError(f"dashboard pull failed: {job.message}")
    layers = [p for p in job.progress.values() if p.get("total")]
    return elapsed, len(layers)


def cli_pull(config_dir, ref_text, tries=2):
    """Seconds for `docker pull`; a failed attempt (the shared engine sometimes answers a
    bare HTTP 400 while other suites run) is said and tried again, untimed."""
    for attempt in range(tries):
        start = time.perf_counter()
        done = subprocess.run(
            ["docker", "--config", config_dir, "pull", "--quiet", ref_text],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if done.returncode == 0:
            return time.perf_counter() - start
        print(f"docker pull failed (attempt {attempt + 1}): {done.stderr.strip()[:200]}")
    raise RuntimeError("docker pull failed twice")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="pulls of each kind (default 5)")
    parser.add_argument("--layers", type=int, default=6, help="RUN layers (default 6)")
    parser.add_argument("--layer-mb", type=int, default=10, help="MB per layer (default 10)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.layers < 5 or args.layers * args.layer_mb < 50:
        parser.error("at least 1 round, 5 layers and 50 MB in all")

    fd, db_path = tempfile.mkstemp(prefix="dockyard-bench-", suffix=".sqlite3", dir="/tmp")
    os.close(fd)
    config_dir = tempfile.mkdtemp(prefix="dockyard-bench-docker-")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    registry = client = None
    tag = ""
    try:
        configure(db_path)
        import docker
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from dashboard.audit import Actor
        from dashboard.models import Host, Membership, Role, Team
        from registries.services import save_registry
        from tests.support.registry import TestRegistry

        registry = TestRegistry(username="bench")
        registry.start()
        client = docker.DockerClient(base_url=DOCKER_URL, version=API_VERSION, timeout=600)
        tag = f"{registry.url}/bench/pull-{uuid.uuid4().hex[:6]}:1"
        print(f"registry {registry.url}; building {args.layers} layers x {args.layer_mb} MB")
        image = build_image(client, settings.TEST_IMAGE, tag, args.layers, args.layer_mb)
        size_mb = image.attrs["Size"] / 1e6
        auth = {"username": registry.username, "password": registry.password}
        for event in client.api.push(tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise RuntimeError(f"push failed: {event['error']}")
        print(f"image {tag}: {size_mb:.0f} MB, {len(image.history())} history entries, pushed")
        subprocess.run(
            ["docker", "--config", config_dir, "login", "-u", registry.username,
             "--password-stdin", registry.url],
            input=registry.password.encode(), check=True, capture_output=True,
        )  # fmt: skip

        team = Team.objects.create(name="bench")
        user = get_user_model().objects.create_user("bench-operator", password="x")
        Membership.objects.create(user=user, team=team, role=Role.OPERATOR)
        host = Host.objects.create(name="local", url=DOCKER_URL, all_teams=True)
        save_registry(
            Actor.system(), name="bench", url=registry.url, username=registry.username,
            password=registry.password, teams=[team],
        )  # fmt: skip
        actor = Actor(user)

        # One untimed pull of each kind first: a worker in production is warm (imports,
        # the engine client, the channel layer's connection), and so is the engine.
        for kind in ("dashboard", "cli"):
            remove_local(client.api, tag)
            if kind == "dashboard":
                dashboard_pull(actor, host, team, tag)
            else:
                cli_pull(config_dir, tag)
        dash, cli = [], []
        for n in range(args.rounds):
            order = ["dashboard", "cli"] if n % 2 == 0 else ["cli", "dashboard"]
            for kind in order:
                remove_local(client.api, tag)
                if kind == "dashboard":
                    seconds, bars = dashboard_pull(actor, host, team, tag)
                    dash.append(seconds)
                    print(f"round {n + 1}: dashboard {seconds:6.2f} s ({bars} layer bars)")
                else:
                    seconds = cli_pull(config_dir, tag)
                    cli.append(seconds)
                    print(f"round {n + 1}: docker pull {seconds:6.2f} s")
        d, c = statistics.median(dash), statistics.median(cli)
        print(f"median: dashboard {d:.2f} s, docker pull {c:.2f} s ({size_mb:.0f} MB)")
        ratio = d / c
        print(f"pull via dashboard / docker pull = {ratio:.2f}x")
        return 1 if args.check and ratio > 1.2 else 0
    finally:
        if client is not None:
            if tag:
                remove_local(client.api, tag)
            client.close()
        if registry is not None:
            registry.destroy()
        shutil.rmtree(config_dir, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(db_path + suffix)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    sys.exit(main())
