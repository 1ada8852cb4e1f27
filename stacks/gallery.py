"""The app gallery: templates shipped with the project (stacks/app_templates/<slug>/).

Each template is a compose file whose settings are `${VARIABLES}` of the stack's
env file, a `template.json` describing them (label, default, kind), and
optionally a build context. Deploying one makes an ordinary stack whose env file
holds the chosen values; a password left empty is generated.
"""

import json
import re
import secrets
from functools import cache

from .policy import StackPolicyError
from .workdir import TEMPLATES_DIR

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KINDS = ("port", "int", "password", "text", "image")


@cache
def templates():
    found = {}
    for folder in sorted(TEMPLATES_DIR.iterdir()):
        meta = folder / "template.json"
        if folder.is_dir() and meta.is_file() and SLUG_RE.match(folder.name):
            data = json.loads(meta.read_text())
            data["slug"] = folder.name
            data["compose"] = (folder / "compose.yaml").read_text()
            found[folder.name] = data
    return found


def get(slug):
    return templates().get(slug) if isinstance(slug, str) else None


def env_from(template, values):
    """The env file for the chosen values; raises StackPolicyError naming the variable."""
    lines = []
    chosen = {}
    for var in template["variables"]:
        name, kind = var["name"], var.get("kind", "text")
        value = str(values.get(name, "") or "").strip()
        if not value:
            value = secrets.token_urlsafe(18) if kind == "password" else str(var.get("default", ""))
        if kind in ("port", "int"):
            if not value.isdigit():
                raise StackPolicyError(f"{var['label']} must be a number.", key=name)
            number = int(value)
            low, high = (1, 65535) if kind == "port" else (var.get("min", 0), var.get("max", 100))
            if not low <= number <= high:
                raise StackPolicyError(
                    f"{var['label']} must be between {low} and {high}.", key=name
                )
        if "\n" in value or "\r" in value:
            raise StackPolicyError(f"{var['label']} must be one line.", key=name)
        if kind == "port":
            pass
        chosen[name] = value
        lines.append(f"{name}={value}")
    ports = [chosen[v["name"]] for v in template["variables"] if v.get("kind") == "port"]
    if len(set(ports)) != len(ports):
        raise StackPolicyError("Each port must be different.", key="ports")
    # Passwords go in the env file only; the version keeps the other values for display.
    shown = {
        v["name"]: chosen[v["name"]] for v in template["variables"] if v.get("kind") != "password"
    }
    return "\n".join(lines) + "\n", shown
