"""A stack's working directory under var/: the dashboard's, never a user's path.

<STACKS_ROOT>/<stack pk>/src/          the stack's own directory (compose file, build
                                       contexts; a git stack's checkout)
<STACKS_ROOT>/<stack pk>/stack.env     the env file (0600)
<STACKS_ROOT>/<stack pk>/deploy.json   the normalised, policy-checked model last deployed
"""

import os
import shutil
from pathlib import Path

from django.conf import settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "app_templates"


def stack_dir(stack):
    path = Path(settings.STACKS_ROOT) / str(stack.pk)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def src_dir(stack):
    path = stack_dir(stack) / "src"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def compose_path(stack):
    if stack.source == stack.Source.GIT:
        return src_dir(stack) / (stack.git_path or "compose.yaml")
    return src_dir(stack) / "compose.yaml"


def env_path(stack):
    return stack_dir(stack) / "stack.env"


def deployed_path(stack):
    return stack_dir(stack) / "deploy.json"


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_version(stack, version):
    """Put a version's files in the stack's directory (a git checkout is the caller's)."""
    src = src_dir(stack)
    if stack.source != stack.Source.GIT:
        # Only what the dashboard puts there: a template's build context, then the file.
        for child in src.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        if stack.source == stack.Source.TEMPLATE and stack.template_slug:
            context = TEMPLATES_DIR / stack.template_slug / "context"
            if context.is_dir():
                shutil.copytree(context, src, dirs_exist_ok=True, symlinks=False)
        write_private(src / "compose.yaml", version.compose)
    write_private(env_path(stack), version.env)


def remove(stack):
    shutil.rmtree(Path(settings.STACKS_ROOT) / str(stack.pk), ignore_errors=True)
