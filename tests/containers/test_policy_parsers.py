"""Every parser of the create policy (containers/policy.py): accepted input and clear refusals."""

import pytest
from django.http import QueryDict

from containers import policy
from containers.policy import PolicyError


def refused(fn, *args, **kwargs):
    with pytest.raises(PolicyError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- lines


def test_lines_skips_blanks_and_comments_and_strips():
    assert policy.lines("  A=1 \n\n# note\nB=2\r\n") == ["A=1", "B=2"]
    assert policy.lines(None) == []


# ---------------------------------------------------------------- image


@pytest.mark.parametrize(
    "value",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:1.27-alpine",
        "localhost:5000/team/app:v1",
        "registry.example.com/a/b/c",
        "busybox@sha256:" + "a" * 64,
        "dockyard-test/busybox:latest",
    ],
)
def test_valid_image_references_pass(value):
    assert policy.parse_image(f"  {value} ") == value


@pytest.mark.parametrize(
    "value", ["Nginx", "nginx:", "a b", "nginx::1", "-nginx", "nginx@sha256:short", "x;rm -rf /"]
)
def test_malformed_image_reference_is_refused_by_name(value):
    err = refused(policy.parse_image, value)
    assert err.field == "image"
    assert repr(value) in err.message and "not a valid image reference" in err.message


@pytest.mark.parametrize("value", ["", "   ", None])
def test_missing_image_is_refused(value):
    assert refused(policy.parse_image, value).message == "Image is required."


# ---------------------------------------------------------------- name


@pytest.mark.parametrize("value, expected", [("web-1", "web-1"), ("a.b_c", "a.b_c"), ("", "")])
def test_valid_names_pass(value, expected):
    assert policy.parse_name(value) == expected


@pytest.mark.parametrize("value", ["<script>alert(1)</script>", "-web", "a b", "x/y", "a" * 129])
def test_bad_names_are_refused(value):
    err = refused(policy.parse_name, value)
    assert err.field == "name"
    assert "letters, digits" in err.message


# ---------------------------------------------------------------- command


def test_command_is_split_like_a_shell():
    assert policy.parse_command("sh -c 'echo hi; sleep 1'") == ["sh", "-c", "echo hi; sleep 1"]
    assert policy.parse_command("  ") is None


def test_command_with_unclosed_quote_is_refused():
    err = refused(policy.parse_command, "sh -c 'echo")
    assert err.field == "command" and "cannot be parsed" in err.message


# ---------------------------------------------------------------- env and labels


def test_env_lines_become_a_dict_and_keep_equals_in_values():
    assert policy.parse_env("A=1\nURL=http://x/?a=b\nEMPTY=\n# c") == {
        "A": "1",
        "URL": "http://x/?a=b",
        "EMPTY": "",
    }


@pytest.mark.parametrize("line", ["NOEQUALS", "1ABC=x", "A B=x", "=x"])
def test_bad_env_line_is_refused_and_quoted(line):
    err = refused(policy.parse_env, f"OK=1\n{line}")
    assert err.field == "env"
    assert repr(line) in err.message and "KEY=value" in err.message


def test_labels_are_parsed_and_stripped():
    assert policy.parse_labels("app = web\ncom.example/tier=front\ndockyard.test=1") == {
        "app": "web",
        "com.example/tier": "front",
        "dockyard.test": "1",
    }


@pytest.mark.parametrize("line", ["novalue", "-x=1", "a b=1"])
def test_bad_label_line_is_refused(line):
    err = refused(policy.parse_labels, line)
    assert err.field == "labels" and "key=value" in err.message


@pytest.mark.parametrize("key", ["dockyard.owner", "dockyard.team"])
def test_reserved_dockyard_labels_are_refused(key):
    err = refused(policy.parse_labels, f"{key}=admin")
    assert err.field == "labels" and "reserved" in err.message


# ---------------------------------------------------------------- ports


def test_ports_are_parsed_with_ip_and_protocol():
    assert policy.parse_ports("8080:80\n127.0.0.1:5353:53/udp\n[::1]:8443:443/tcp") == [
        {"host_ip": "", "host_port": 8080, "container_port": 80, "proto": "tcp"},
        {"host_ip": "127.0.0.1", "host_port": 5353, "container_port": 53, "proto": "udp"},
        {"host_ip": "::1", "host_port": 8443, "container_port": 443, "proto": "tcp"},
    ]


def test_same_port_on_tcp_and_udp_is_not_a_duplicate():
    assert len(policy.parse_ports("53:53/tcp\n53:53/udp")) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("70000:80", "Host port 70000 is out of range (1–65535)."),
        ("0:80", "Host port 0 is out of range (1–65535)."),
        ("8080:65536", "Container port 65536 is out of range (1–65535)."),
        ("abc:80", "Host port 'abc' is not a number."),
        ("8080:http", "Container port 'http' is not a number."),
        ("8080:80/sctp", "Protocol 'sctp' must be tcp or udp."),
        ("80", "Port line '80' is not host_port:container_port."),
        ("8080:80\n8080:80/tcp", "Host port 8080/tcp is listed twice."),
        ("example.com:8080:80", "'example.com' is not an IP address."),
        ("1:2:3:4", "'1:2' is not an IP address."),
        ("999.1.1.1:8080:80", "'999.1.1.1' is not an IP address."),
    ],
)
def test_bad_ports_are_refused_with_a_clear_message(text, message):
    err = refused(policy.parse_ports, text)
    assert err.field == "ports"
    assert err.message == message


# ---------------------------------------------------------------- volumes


def test_named_volumes_with_modes():
    volumes, binds = policy.parse_volumes("data:/data\ncache:/var/cache:ro")
    assert volumes == [
        {"name": "data", "target": "/data", "mode": "rw"},
        {"name": "cache", "target": "/var/cache", "mode": "ro"},
    ]
    assert binds == []


@pytest.mark.parametrize("line", ["/srv/data:/data", "/:/host", "../etc:/etc"])
def test_host_paths_are_refused_to_non_admins(line):
    err = refused(policy.parse_volumes, line)
    assert err.field == "volumes" and "host path" in err.message


@pytest.mark.parametrize(
    "line",
    ["/var/run/docker.sock:/var/run/docker.sock", "/run/docker.sock:/sock", "v:/docker.sock"],
)
def test_docker_socket_is_refused_to_non_admins(line):
    err = refused(policy.parse_volumes, line)
    assert err.message == "Mounting the Docker socket is not allowed."


def test_admins_get_host_binds():
    volumes, binds = policy.parse_volumes(
        "/srv:/srv:ro\n/var/run/docker.sock:/var/run/docker.sock", allow_host_paths=True
    )
    assert volumes == []
    assert binds == [
        {"path": "/srv", "target": "/srv", "mode": "ro"},
        {"path": "/var/run/docker.sock", "target": "/var/run/docker.sock", "mode": "rw"},
    ]


@pytest.mark.parametrize("line", ["data", "data:relative", "data:/x:zz", "a:/b:/c:ro"])
def test_malformed_volume_lines_are_refused(line):
    err = refused(policy.parse_volumes, line)
    assert err.field == "volumes" and "name:/path[:ro]" in err.message


# ---------------------------------------------------------------- restart, memory, cpus


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", {"Name": "", "MaximumRetryCount": 0}),
        ("no", {"Name": "", "MaximumRetryCount": 0}),
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:3", {"Name": "on-failure", "MaximumRetryCount": 3}),
    ],
)
def test_restart_policies(value, expected):
    assert policy.parse_restart(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("sometimes", "Restart policy must be one of no, always, unless-stopped, on-failure."),
        ("always:3", "Only on-failure takes a retry count (on-failure:3)."),
        ("on-failure:x", "Only on-failure takes a retry count (on-failure:3)."),
        ("on-failure:-1", "Only on-failure takes a retry count (on-failure:3)."),
    ],
)
def test_bad_restart_policy_is_refused(value, message):
    err = refused(policy.parse_restart, value)
    assert (err.field, err.message) == ("restart", message)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", None),
        ("64m", 64 * 1024**2),
        ("1g", 1024**3),
        ("6m", 6 * 1024**2),
        ("1048576k", 1024**3),
    ],
)
def test_memory_sizes(value, expected):
    assert policy.parse_memory(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("lots", "'lots' is not a size (e.g. 256m, 1g)."),
        ("5m", "Memory limit must be at least 6m (Docker's minimum)."),
        ("100", "Memory limit must be at least 6m (Docker's minimum)."),
    ],
)
def test_bad_memory_is_refused(value, message):
    err = refused(policy.parse_memory, value)
    assert (err.field, err.message) == ("memory", message)


@pytest.mark.parametrize(
    "value, nano",
    [("", None), (None, None), ("0.5", 500_000_000), ("2", 2_000_000_000), (1, 10**9)],
)
def test_cpus_become_nano_cpus(value, nano):
    assert policy.parse_cpus(value) == nano


@pytest.mark.parametrize(
    "value, message",
    [
        ("half", "'half' is not a number of CPUs (e.g. 0.5)."),
        ("0", "CPUs must be between 0.01 and 1024."),
        ("-1", "CPUs must be between 0.01 and 1024."),
        ("2000", "CPUs must be between 0.01 and 1024."),
        ("nan", "CPUs must be between 0.01 and 1024."),
    ],
)
def test_bad_cpus_are_refused(value, message):
    err = refused(policy.parse_cpus, value)
    assert (err.field, err.message) == ("cpus", message)


# ---------------------------------------------------------------- privileged options


@pytest.mark.parametrize("field", sorted(policy.PRIVILEGED_FIELDS))
def test_each_privileged_field_is_refused_when_posted(field):
    data = QueryDict(mutable=True)
    data.update({"image": "busybox", field: "host" if field.endswith("_mode") else "on"})
    err = refused(policy.refuse_privileged, data)
    assert err.field == field
    assert policy.PRIVILEGED_FIELDS[field] in err.message and f"({field})" in err.message


def test_privileged_field_refused_even_when_hidden_among_blank_values():
    data = QueryDict("cap_add=&cap_add=SYS_ADMIN")
    assert refused(policy.refuse_privileged, data).field == "cap_add"


@pytest.mark.parametrize("value", ["", " ", "off", "false"])
def test_unset_privileged_fields_are_not_refused(value):
    data = QueryDict(mutable=True)
    for field in policy.PRIVILEGED_FIELDS:
        data[field] = value
    policy.refuse_privileged(data)  # no PolicyError


def test_privileged_options_are_normalised_for_admins():
    data = QueryDict(
        "privileged=on&cap_add=NET_ADMIN,%20SYS_TIME&devices=/dev/fuse"
        "&security_opt=&pid_mode=host&ipc_mode=%20&network_mode=host"
    )
    assert policy.parse_privileged(data) == {
        "privileged": True,
        "cap_add": ["NET_ADMIN", "SYS_TIME"],
        "devices": ["/dev/fuse"],
        "pid_mode": "host",
        "network_mode": "host",
    }


def test_no_privileged_options_gives_empty_dict():
    assert policy.parse_privileged(QueryDict("privileged=off")) == {}
