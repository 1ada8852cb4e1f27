"""Git sources: Debian's `git` as a subprocess, with a clean environment.

The repository URL never carries credentials (they are refused in it); a stack's
username and password reach git only through a private GIT_ASKPASS script that
reads them from the subprocess's own environment, so they are in no command
line, no .git/config, no job parameter and no log. Only http(s) and git://
remotes are allowed (ssh would use the dashboard machine's own keys, ext:: runs
commands); file:// only under STACKS_GIT_LOCAL_ROOTS, or for dashboard admins.
"""

import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

from django.conf import settings

from dashboard import scratch

from .compose import SAFE_PATH

BRANCH_RE = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$DOCKYARD_GIT_USERNAME" ;;
  *) printf '%s\\n' "$DOCKYARD_GIT_PASSWORD" ;;
esac
"""


class GitError(Exception):
    pass


def check_url(url, admin=False):
    """A repository URL a stack may use; raises GitError saying why not."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "git", "file"):
        raise GitError("The repository URL must start with https://, http://, git:// or file://.")
    if parts.username or parts.password:
        raise GitError("Put credentials in the username and password fields, not in the URL.")
    if parts.scheme == "file":
        path = os.path.realpath(parts.path)
        roots = [os.path.realpath(r) for r in settings.STACKS_GIT_LOCAL_ROOTS]
        if not admin and not any(path == r or path.startswith(r + os.sep) for r in roots):
            raise GitError("file:// repositories are for dashboard admins only.")
    elif not parts.hostname:
        raise GitError("The repository URL has no host.")
    return url


def check_branch(branch):
    branch = (branch or "").strip()
    if not BRANCH_RE.match(branch):
        raise GitError(f"{branch!r} is not a branch name.")
    return branch


def check_path(path):
    path = (path or "").strip()
    norm = os.path.normpath(path)
    if not path or os.path.isabs(path) or norm.startswith("..") or "$" in path:
        raise GitError("The compose file path must be relative to the repository's root.")
    return norm


def _env(folder, username, password, allow_file):
    askpass = os.path.join(folder, "askpass")
    fd = os.open(askpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(fd, "w") as fh:
        fh.write(ASKPASS)
    return {
        "PATH": SAFE_PATH,
        "HOME": folder,
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ASKPASS": askpass,
        "GIT_ALLOW_PROTOCOL": "http:https:git" + (":file" if allow_file else ""),
        "DOCKYARD_GIT_USERNAME": username or "",
        "DOCKYARD_GIT_PASSWORD": password or "",
    }


def _git(args, cwd, env, timeout):
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout} s.") from None
    if done.returncode != 0:
        # git's message without the credentials it might echo (it does not, but be sure).
        message = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise GitError(f"git {args[0]} failed: {' '.join(message)[:500]}")
    return done.stdout.strip()


def _run(fn):
    folder = scratch.private_dir("dockyard-git-")  # removed below, or after a crash
    try:
        return fn(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checkout(repo_dir, url, branch, username="", password="", commit=None):
    """Fetch `branch` of `url` into `repo_dir` and check out its head (or `commit`).

    Returns the commit checked out. The working tree is reset to exactly that commit.
    """
    timeout = settings.STACKS_GIT_TIMEOUT
    allow_file = url.startswith("file://")
    if commit is not None and not SHA_RE.match(commit):
        raise GitError(f"{commit!r} is not a commit id.")

    def work(folder):
        env = _env(folder, username, password, allow_file)
        if not os.path.isdir(os.path.join(repo_dir, ".git")):
            os.makedirs(repo_dir, exist_ok=True)
            _git(["init", "-q"], repo_dir, env, timeout)
        ref = f"refs/remotes/origin/{branch}"
        _git(
            ["fetch", "-q", "--no-tags", url, f"+refs/heads/{branch}:{ref}"], repo_dir, env, timeout
        )
        target = commit or _git(["rev-parse", ref], repo_dir, env, timeout)
        _git(
            ["-c", "advice.detachedHead=false", "checkout", "-q", "-f", target],
            repo_dir,
            env,
            timeout,
        )
        _git(["clean", "-q", "-f", "-d", "-x"], repo_dir, env, timeout)
        return _git(["rev-parse", "HEAD"], repo_dir, env, timeout)

    return _run(work)


def remote_head(url, branch, username="", password=""):
    """The commit `branch` points at on the remote (for polling), without fetching."""

    def work(folder):
        env = _env(folder, username, password, url.startswith("file://"))
        out = _git(
            ["ls-remote", url, f"refs/heads/{branch}"], folder, env, settings.STACKS_GIT_TIMEOUT
        )
        return out.split()[0] if out else ""

    return _run(work)
