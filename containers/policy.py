"""The create policy: turn a create form into a safe, normalised spec.

The spec is built from parsed, allowlisted fields only; nothing a user posts is
passed through to Docker. Options that give a container power over its host
(see ARCHITECTURE.md, access model) are refused to non-admins, whether or not the form showed them.
"""

import ipaddress
import re
import shlex

from docker.utils import parse_bytes

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
# The distribution reference grammar, simplified: [registry[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?"  # noqa: E501
IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

# Options only admins may set, with the message a non-admin gets for each.
PRIVILEGED_FIELDS = {
    "privileged": "privileged mode",
    "binds": "host-path bind mounts",
    "mounts": "bind-type mounts",
    "cap_add": "added capabilities",
    "network_mode": "a host or container network mode",
    "pid_mode": "the host or another container's PID namespace",
    "ipc_mode": "the host or another container's IPC namespace",
    "uts_mode": "the host's UTS namespace",
    "userns_mode": "the host's user namespace",
    "devices": "host devices",
    "security_opt": "security options",
    "sysctls": "sysctls",
    "cgroup_parent": "a cgroup parent",
    "runtime": "a container runtime",
    "volumes_from": "volumes from another container",
    "volume_driver_opts": "volume driver options",
}


class PolicyError(ValueError):
    """Input the policy refuses; the message says which field and why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def lines(text):
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip() and not ln.startswith("#")]


def parse_image(value):
    value = (value or "").strip()
    if not value:
        raise PolicyError("image", "Image is required.")
    if not IMAGE_RE.match(value):
        raise PolicyError("image", f"{value!r} is not a valid image reference (e.g. nginx:1.27).")
    return value


def parse_name(value):
    value = (value or "").strip()
    if value and not NAME_RE.match(value):
        raise PolicyError(
            "name",
            "Name may contain only letters, digits, '_', '.' and '-', "
            "and must start with a letter or digit.",
        )
    return value


def parse_command(value):
    value = (value or "").strip()
    if not value:
        return None
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise PolicyError("command", f"Command cannot be parsed: {exc}.") from None


def parse_env(text):
    env = {}
    for line in lines(text):
        key, sep, val = line.partition("=")
        if not sep or not ENV_KEY_RE.match(key):
            raise PolicyError("env", f"Environment line {line!r} is not KEY=value.")
        env[key] = val
    return env


def parse_labels(text):
    labels = {}
    for line in lines(text):
        key, sep, val = line.partition("=")
        key = key.strip()
        if not sep or not LABEL_KEY_RE.match(key):
            raise PolicyError("labels", f"Label line {line!r} is not key=value.")
        if key.startswith("dockyard.") and key != "dockyard.test":
            raise PolicyError("labels", "Labels starting with 'dockyard.' are reserved.")
        if key.startswith("com.docker.compose."):
            # Compose finds a project's containers by these: a forged one would make
            # another team's stack act on this container.
            raise PolicyError("labels", "Labels starting with 'com.docker.compose.' are reserved.")
        labels[key] = val.strip()
    return labels


def _port(value, what):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise PolicyError("ports", f"{what} {value!r} is not a number.") from None
    if not 1 <= port <= 65535:
        raise PolicyError("ports", f"{what} {port} is out of range (1–65535).")
    return port


def parse_ports(text):
    """Lines of [ip:]host_port:container_port[/tcp|udp] → list of dicts."""
    ports, seen = [], set()
    for line in lines(text):
        spec, _, proto = line.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise PolicyError("ports", f"Protocol {proto!r} must be tcp or udp.")
        parts = spec.rsplit(":", 2)
        if len(parts) == 2:
            host_ip, host_port, container_port = "", *parts
        elif len(parts) == 3:
            host_ip, host_port, container_port = parts
        else:
            raise PolicyError("ports", f"Port line {line!r} is not host_port:container_port.")
        if host_ip:
            try:
                ipaddress.ip_address(host_ip.strip("[]"))
            except ValueError:
                raise PolicyError("ports", f"{host_ip!r} is not an IP address.") from None
        entry = {
            "host_ip": host_ip.strip("[]"),
            "host_port": _port(host_port, "Host port"),
            "container_port": _port(container_port, "Container port"),
            "proto": proto,
        }
        key = (entry["host_ip"], entry["host_port"], proto)
        if key in seen:
            raise PolicyError("ports", f"Host port {entry['host_port']}/{proto} is listed twice.")
        seen.add(key)
        ports.append(entry)
    return ports


def parse_volumes(text, allow_host_paths=False):
    """Lines of source:/target[:ro]. A source that is a path is a host bind (admin only)."""
    volumes, binds = [], []
    for line in lines(text):
        parts = line.split(":")
        mode = "rw"
        if len(parts) == 3 and parts[2] in ("ro", "rw"):
            mode = parts.pop()
        if len(parts) != 2 or not parts[1].startswith("/"):
            raise PolicyError("volumes", f"Volume line {line!r} is not name:/path[:ro].")
        source, target = parts
        if "docker.sock" in source or "docker.sock" in target:
            if not allow_host_paths:
                raise PolicyError("volumes", "Mounting the Docker socket is not allowed.")
        if VOLUME_NAME_RE.match(source):
            volumes.append({"name": source, "target": target, "mode": mode})
        elif allow_host_paths and source.startswith("/"):
            binds.append({"path": source, "target": target, "mode": mode})
        else:
            raise PolicyError(
                "volumes",
                f"{source!r} is a host path: only named volumes are allowed for your role.",
            )
    return volumes, binds


def parse_restart(value):
    value = (value or "no").strip()
    name, _, retries = value.partition(":")
    if name not in RESTART_POLICIES:
        raise PolicyError(
            "restart", f"Restart policy must be one of {', '.join(RESTART_POLICIES)}."
        )
    count = 0
    if retries:
        if name != "on-failure" or not retries.isdigit():
            raise PolicyError("restart", "Only on-failure takes a retry count (on-failure:3).")
        count = int(retries)
    return {"Name": "" if name == "no" else name, "MaximumRetryCount": count}


def parse_memory(value):
    value = (value or "").strip()
    if not value:
        return None
    try:
        size = parse_bytes(value)
    except Exception:
        raise PolicyError("memory", f"{value!r} is not a size (e.g. 256m, 1g).") from None
    if size < 6 * 1024 * 1024:
        raise PolicyError("memory", "Memory limit must be at least 6m (Docker's minimum).")
    return size


def parse_cpus(value):
    value = (value or "").strip() if isinstance(value, str) else value
    if value in (None, ""):
        return None
    try:
        cpus = float(value)
    except ValueError:
        raise PolicyError("cpus", f"{value!r} is not a number of CPUs (e.g. 0.5).") from None
    if not 0.01 <= cpus <= 1024:
        raise PolicyError("cpus", "CPUs must be between 0.01 and 1024.")
    return int(cpus * 1e9)


def refuse_privileged(data):
    """Refuse any admin-only option present in raw POST data (non-admins only)."""
    for field, what in PRIVILEGED_FIELDS.items():
        values = [v for v in data.getlist(field) if str(v).strip() not in ("", "off", "false")]
        if values:
            raise PolicyError(field, f"Your role does not allow {what} ({field}).")


def parse_privileged(data):
    """Admin-only options from the form, normalised. Caller ensures the user is admin."""
    opts = {}
    if str(data.get("privileged", "")).lower() in ("on", "true", "1"):
        opts["privileged"] = True
    for field in ("cap_add", "devices", "security_opt"):
        values = [v for v in re.split(r"[\s,]+", data.get(field, "") or "") if v]
        if values:
            opts[field] = values
    for field in ("pid_mode", "ipc_mode", "network_mode"):
        value = (data.get(field) or "").strip()
        if value:
            opts[field] = value
    return opts
