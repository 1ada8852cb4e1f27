"""containers/inspect.py on JSON captured from a real engine (tests/containers/data/)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from containers import inspect

DATA = Path(__file__).parent / "data"


def load(name):
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def running():
    return load("inspect_running")


@pytest.fixture(scope="module")
def exited():
    return load("inspect_exited")


@pytest.fixture(scope="module")
def listed():
    return {entry["Names"][0].lstrip("/"): entry for entry in load("list_all")}


# ---------------------------------------------------------------- summarize (detail page)


def test_summary_masks_the_password_and_shows_plain_env(running):
    triples = inspect.summarize(running)["env"]
    env = {key: shown for key, shown, _ in triples}
    masked = {key: flag for key, _, flag in triples}
    assert env["DB_PASSWORD"] == inspect.MASK and masked["DB_PASSWORD"] is True
    assert "hunter2" not in json.dumps(inspect.summarize(running), default=str)
    assert env["MODE"] == "prod" and masked["MODE"] is False
    assert env["PATH"].startswith("/usr/local/sbin:")


def test_summary_for_readers_without_env_values_shows_keys_only(running):
    s = inspect.summarize(running, env_values=False)
    env = {key: shown for key, shown, _ in s["env"]}
    assert {"DB_PASSWORD", "MODE", "PATH"} <= set(env)
    assert all(shown in (inspect.MASK, "") for shown in env.values())
    assert "hunter2" not in json.dumps(s, default=str)
    assert "prod" not in json.dumps(s["env"]) and "/usr/local/sbin" not in json.dumps(s["env"])


def test_summary_of_running_container_shows_port_limits_restart_and_volume(running):
    s = inspect.summarize(running)
    assert (s["name"], s["state"], s["image"]) == (
        "capture-run",
        "running",
        "dockyard-test/busybox:latest",
    )
    assert "0.0.0.0:18081 → 80/tcp" in s["ports"]
    assert all(p.endswith(":18081 → 80/tcp") for p in s["ports"])
    assert s["memory_limit"] == 64 * 1024 * 1024
    assert s["cpus"] == 0.5
    assert (s["restart_policy"], s["restart_retries"]) == ("on-failure", 3)
    assert s["mounts"] == [
        {"type": "volume", "source": "capvol", "destination": "/data", "mode": "rw"}
    ]
    assert s["networks"] == [{"name": "bridge", "ip": "172.17.0.2", "mac": "02:42:ac:11:00:02"}]
    assert ("dockyard.test", "1") in s["labels"]
    assert s["privileged"] is False


def test_summary_of_exited_container_shows_exit_code_and_no_limits(exited):
    s = inspect.summarize(exited)
    assert (s["state"], s["exit_code"]) == ("exited", 3)
    assert s["ports"] == [] and s["mounts"] == []
    assert (s["memory_limit"], s["cpus"]) == (0, 0)
    assert (s["restart_policy"], s["restart_retries"]) == ("no", 0)


def test_summary_times_are_parsed_and_zero_time_is_none(running, exited):
    s = inspect.summarize(running)
    assert s["started_at"] == datetime(2026, 11, 28, 6, 50, 10, 760481, tzinfo=UTC)
    assert s["finished_at"] is None  # Docker's 0001-01-01 "never"
    assert inspect.summarize(exited)["finished_at"] == datetime(
        2026, 11, 28, 6, 50, 11, 212446, tzinfo=UTC
    )


def test_summary_of_empty_inspect_does_not_crash():
    s = inspect.summarize({})
    assert s["name"] == "" and s["ports"] == [] and s["env"] == []
    assert s["restart_policy"] == "no"


# ---------------------------------------------------------------- mirror fields


def test_fields_from_inspect_exit_code_only_when_exited(running, exited):
    run, ex = inspect.fields_from_inspect(running), inspect.fields_from_inspect(exited)
    assert (run["name"], run["state"], run["exit_code"]) == ("capture-run", "running", None)
    assert (ex["name"], ex["state"], ex["exit_code"]) == ("capture-exit", "exited", 3)


def test_fields_from_list_entry_of_exited_container(listed):
    f = inspect.fields_from_list_entry(listed["capture-exit"])
    assert f["name"] == "capture-exit"
    assert (f["state"], f["exit_code"], f["health"]) == ("exited", 3, "")
    assert f["status"].startswith("Exited (3)")
    assert f["image"] == "dockyard-test/busybox:latest"
    assert f["ports"] == []
    assert f["created"] == datetime.fromtimestamp(1795848610, tz=UTC)


def test_fields_from_list_entry_of_running_container_lists_port_once(listed):
    f = inspect.fields_from_list_entry(listed["capture-run"])
    assert (f["name"], f["state"], f["exit_code"]) == ("capture-run", "running", None)
    # The engine reports the IPv4 and the IPv6 binding of one port: shown once.
    assert f["ports"] == ["0.0.0.0:18081→80/tcp"]


@pytest.mark.parametrize("name", ["capture-run", "capture-exit"])
def test_mirror_command_is_the_same_from_list_and_from_inspect(listed, name):
    data = load("inspect_running" if name == "capture-run" else "inspect_exited")
    assert (
        inspect.fields_from_inspect(data)["command"]
        == inspect.fields_from_list_entry(listed[name])["command"]
    )


@pytest.mark.parametrize(
    "status, health, exit_code",
    [
        ("Up 3 minutes (healthy)", "healthy", None),
        ("Up 5 seconds (health: starting)", "starting", None),
        ("Up 2 hours (unhealthy)", "unhealthy", None),
        ("Exited (137) 2 minutes ago", "", 137),
        ("Exited (0) 1 second ago", "", 0),
        ("Created", "", None),
    ],
)
def test_list_status_gives_health_and_exit_code(status, health, exit_code):
    entry = {"Id": "ab" * 32, "Names": ["/x"], "State": "any", "Status": status}
    f = inspect.fields_from_list_entry(entry)
    assert (f["health"], f["exit_code"]) == (health, exit_code)


def test_list_entry_without_names_uses_short_id():
    f = inspect.fields_from_list_entry({"Id": "0123456789abcdef" * 4})
    assert f["name"] == "0123456789ab"
    assert f["created"] is None and f["ports"] == []


def test_unpublished_ports_and_distinct_addresses_are_kept():
    ports = [
        {"PrivatePort": 443, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
    ]
    assert inspect.format_list_ports(ports) == [
        ":::5353→53/udp",
        "127.0.0.1:8080→80/tcp",
        "443/tcp",
    ]


# ---------------------------------------------------------------- env masking


@pytest.mark.parametrize(
    "item, shown, masked",
    [
        ("DB_PASSWORD=hunter2", inspect.MASK, True),
        ("api_token=abc", inspect.MASK, True),
        ("AWS_SECRET_ACCESS_KEY=x", inspect.MASK, True),
        ("TLS_CERT=-----BEGIN", inspect.MASK, True),
        ("PASSWORD=", "", False),  # nothing to hide
        ("MODE=prod", "prod", False),
        ("URL=http://a=b", "http://a=b", False),  # only the first '=' splits
        ("FLAG", "", False),
        # A harmless-looking key can still carry a credential in its value.
        (
            "DATABASE_URL=postgres://app:s3cr3t@db:5432/app",
            f"postgres://app:{inspect.MASK}@db:5432/app",
            True,
        ),
        ("MIRROR=https://tok3n@example.com/x", f"https://{inspect.MASK}@example.com/x", True),
        ("CONTACT=ops@example.com", "ops@example.com", False),  # no scheme: not a URL
    ],
)
def test_mask_env(item, shown, masked):
    [(key, value, flag)] = inspect.mask_env([item])
    assert key == item.partition("=")[0]
    assert value == shown
    assert flag is masked


@pytest.mark.parametrize(
    "item, shown",
    [
        ("DB_PASSWORD=hunter2", inspect.MASK),
        ("MODE=prod", inspect.MASK),
        ("DATABASE_URL=postgres://app:s3cr3t@db/app", inspect.MASK),
        ("PASSWORD=", ""),
        ("FLAG", ""),
    ],
)
def test_mask_env_without_values_shows_keys_only(item, shown):
    [(key, value, flag)] = inspect.mask_env([item], values=False)
    assert key == item.partition("=")[0]
    assert value == shown
    assert flag is (shown == inspect.MASK)


def test_mask_env_of_none_is_empty():
    assert inspect.mask_env(None) == []
