"""Stack fixtures: a private STACKS_ROOT, and a cleanup that removes every compose
project the test made (containers, networks, volumes, built images), even on failure."""

import subprocess

import docker
import pytest
from django.conf import settings

from stacks import compose
from stacks.models import Stack
from tests.support.helpers import wait_job

PROJECT_LABEL = "com.docker.compose.project"


@pytest.fixture(autouse=True)
def stacks_root(tmp_path, settings):
    settings.STACKS_ROOT = str(tmp_path / "stacks")
    settings.STACKS_GIT_LOCAL_ROOTS = [str(tmp_path)]
    return tmp_path / "stacks"


def remove_project(client, project):
    """`docker-compose down -v` of the project, then anything still carrying its label."""
    subprocess.run(
        [compose.binary(), "-p", project, "down", "-v", "--remove-orphans", "-t", "1"],
        env={
            "PATH": compose.SAFE_PATH,
            "DOCKER_HOST": "unix:///var/run/docker.sock",
            "HOME": "/tmp",
        },
        capture_output=True,
        timeout=120,
        cwd="/tmp",
    )
    label = {"label": f"{PROJECT_LABEL}={project}"}
    for c in client.api.containers(all=True, filters=label):
        _quiet(client.api.remove_container, c["Id"], force=True, v=True)
    for v in client.api.volumes(filters=label).get("Volumes") or []:
        _quiet(client.api.remove_volume, v["Name"], force=True)
    for n in client.api.networks(filters=label):
        _quiet(client.api.remove_network, n["Id"])


def _quiet(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except docker.errors.APIError:
        pass


@pytest.fixture
def stack_cleanup(docker_client, engine_cleanup):
    """Projects of every stack this test made are taken down at the end; `images` lists
    image tags the test built (removed too)."""
    images = []
    yield images
    for project in Stack.objects.values_list("project", flat=True):
        remove_project(docker_client, project)
    for tag in images:
        _quiet(docker_client.api.remove_image, tag, force=True)


def two_services(port, extra=""):
    """A two-service compose file on the test image: web (httpd on `port`) and worker."""
    return f"""
services:
  web:
    image: {settings.TEST_IMAGE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports: ["{port}:8080"]
    stop_grace_period: 1s
    labels: {{dockyard.test: "1"}}
  worker:
    image: {settings.TEST_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels: {{dockyard.test: "1"}}
{extra}"""


def deployed(job, timeout=90):
    job = wait_job(job, timeout=timeout)
    assert job.status == "succeeded", f"{job.message}\n{job.output}"
    return job


def project_containers(client, stack):
    listed = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={stack.project}"})
    return {c["Id"]: (c["Labels"].get("com.docker.compose.service"), c["State"]) for c in listed}


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "HOME": "/tmp",
    "PATH": "/usr/bin:/bin",
}


def git(*args, cwd):
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A bare repository (the "server") and a clone to commit from."""
    bare = tmp_path / "app.git"
    work = tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "main", cwd=work)

    def commit(files, message="change"):
        for name, content in files.items():
            path = work / name
            if isinstance(content, tuple):  # ("symlink", target)
                path.unlink(missing_ok=True)
                path.symlink_to(content[1])
            else:
                path.write_text(content)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    return type("Repo", (), {"url": f"file://{bare}", "commit": staticmethod(commit)})
