"""Pure functions that turn engine JSON into what pages show (unit-tested on real output)."""

import re
import shlex
from datetime import UTC, datetime

SECRET_KEY_RE = re.compile(r"pass|secret|token|key|credential|auth|private|cert|salt", re.I)
MASK = "••••••"
_EXIT_RE = re.compile(r"^Exited \((-?\d+)\)")
_HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def parse_time(value):
    """Docker's RFC 3339 with nanoseconds → aware datetime; its zero time → None."""
    if not value or value.startswith("0001-01-01"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(head + (f".{digits}" if digits else ""))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


# scheme://user:password@host and scheme://token@host, anywhere in a string.
_USERINFO_RE = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#]+)@")


def mask_credentials(text):
    """Mask what sits before the @ of a URL: the password of user:password, a bare token."""
    if not text or "@" not in text:
        return text

    def mask(m):
        user, sep, _password = m.group("userinfo").partition(":")
        shown = f"{user}:{MASK}" if sep else MASK
        return f"{m.group('scheme')}{shown}@"

    return _USERINFO_RE.sub(mask, text)


def mask_env(env_list, values=True):
    """[(KEY, shown value, masked?)] from Docker's ["KEY=value", …].

    Readers without `values` (viewers) see keys only. Otherwise values whose key
    looks secret are masked whole, and credentials inside any value are masked:
    a harmless-looking key (DATABASE_URL) can still carry a password.
    """
    out = []
    for item in env_list or []:
        key, _, value = item.partition("=")
        if not value:
            shown = value
        elif not values or SECRET_KEY_RE.search(key):
            shown = MASK
        else:
            shown = mask_credentials(value)
        out.append((key, shown, shown != value))
    return out


def fields_from_list_entry(item):
    """Mirror fields from one entry of GET /containers/json."""
    status = item.get("Status") or ""
    exit_match = _EXIT_RE.match(status)
    health_match = _HEALTH_RE.search(status)
    names = item.get("Names") or []
    name = names[0].lstrip("/") if names else item["Id"][:12]
    created = item.get("Created")
    return {
        "name": name,
        "image": item.get("Image") or "",
        "command": mask_credentials(item.get("Command") or ""),
        "state": item.get("State") or "",
        "status": status,
        "health": health_match.group(1).replace("health: ", "") if health_match else "",
        "exit_code": int(exit_match.group(1)) if exit_match else None,
        "ports": format_list_ports(item.get("Ports") or []),
        "created": datetime.fromtimestamp(created, tz=UTC) if created else None,
    }


def format_list_ports(ports):
    """["0.0.0.0:8080→80/tcp", "443/tcp"] from the list endpoint's Ports."""
    out = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", ""))):
        private = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        if p.get("PublicPort"):
            out.append(f"{p.get('IP') or '0.0.0.0'}:{p['PublicPort']}→{private}")
        else:
            out.append(private)
    # IPv4 and IPv6 bindings of one port read as duplicates; keep the first.
    seen, unique = set(), []
    for entry in out:
        key = "0.0.0.0:" + entry[3:] if entry.startswith(":::") else entry
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    return unique


def configured_ports(data):
    """Published ports as configured (HostConfig.PortBindings), running or not."""
    out = []
    bindings = ((data.get("HostConfig") or {}).get("PortBindings")) or {}
    for private, entries in sorted(bindings.items()):
        for b in entries or []:
            if b.get("HostPort"):
                out.append(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}→{private}")
    return out


def fields_from_inspect(data):
    """Mirror fields from GET /containers/<id>/json."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    health = (state.get("Health") or {}).get("Status", "")
    cmd = config.get("Cmd") or []
    entry = config.get("Entrypoint") or []
    status = state.get("Status", "")
    return {
        "name": (data.get("Name") or "").lstrip("/"),
        "image": config.get("Image") or "",
        # Quoted like the list endpoint's Command, so sync and events agree.
        "command": mask_credentials(shlex.join([*entry, *cmd])),
        "state": status,
        "health": health,
        "exit_code": state.get("ExitCode") if status in ("exited", "dead") else None,
        "ports": configured_ports(data),
    }


def summarize(data, env_values=True):
    """Everything the detail page shows, from an inspect result.

    Credentials are masked everywhere they can hide (command, labels, env);
    `env_values` False (viewers) hides every environment value.
    """
    state = data.get("State") or {}
    config = data.get("Config") or {}
    hc = data.get("HostConfig") or {}
    restart = hc.get("RestartPolicy") or {}
    ports = []
    for private, bindings in sorted(
        ((data.get("NetworkSettings") or {}).get("Ports") or {}).items()
    ):
        for b in bindings or [{}]:
            if b.get("HostPort"):
                ports.append(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']} → {private}")
            else:
                ports.append(private)
    if not any("→" in p for p in ports):
        # A stopped container binds nothing, but its configuration still says what.
        ports = [p.replace("→", " → ") + " (when running)" for p in configured_ports(data)]
    networks = []
    for name, net in sorted(((data.get("NetworkSettings") or {}).get("Networks") or {}).items()):
        networks.append(
            {"name": name, "ip": net.get("IPAddress", ""), "mac": net.get("MacAddress", "")}
        )
    mounts = [
        {
            "type": m.get("Type", ""),
            "source": m.get("Name") or m.get("Source", ""),
            "destination": m.get("Destination", ""),
            "mode": "rw" if m.get("RW", True) else "ro",
        }
        for m in data.get("Mounts") or []
    ]
    nano = hc.get("NanoCpus") or 0
    return {
        "id": data.get("Id", ""),
        "name": (data.get("Name") or "").lstrip("/"),
        "image": config.get("Image", ""),
        "image_id": data.get("Image", ""),
        "entrypoint": mask_credentials(shlex.join(config.get("Entrypoint") or [])),
        "command": mask_credentials(shlex.join(config.get("Cmd") or [])),
        "state": state.get("Status", ""),
        "exit_code": state.get("ExitCode"),
        "error": state.get("Error", ""),
        "oom_killed": state.get("OOMKilled", False),
        "started_at": parse_time(state.get("StartedAt")),
        "finished_at": parse_time(state.get("FinishedAt")),
        "health": (state.get("Health") or {}).get("Status", ""),
        "restart_count": data.get("RestartCount", 0),
        "ports": ports,
        "mounts": mounts,
        "networks": networks,
        "env": mask_env(config.get("Env"), values=env_values),
        "labels": sorted(
            (k, MASK if SECRET_KEY_RE.search(k) and v else mask_credentials(v))
            for k, v in (config.get("Labels") or {}).items()
        ),
        "restart_policy": restart.get("Name") or "no",
        "restart_retries": restart.get("MaximumRetryCount", 0),
        "memory_limit": hc.get("Memory") or 0,
        "cpus": nano / 1e9 if nano else 0,
        "privileged": hc.get("Privileged", False),
        "network_mode": hc.get("NetworkMode", ""),
    }
