"""The compose policy: one test per refused key. A refused file creates nothing (no
stack, no job, nothing on the engine) and the message names the service and the key."""

import pytest
from django.conf import settings
from django.urls import reverse

from dashboard.audit import Actor
from dashboard.models import Job
from resources import services as resource_services
from resources.models import Network, Volume
from stacks import services
from stacks.models import Stack
from stacks.policy import StackPolicyError, parse_env
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique

IMAGE = settings.TEST_IMAGE


def service(body):
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"services:\n  app:\n    image: {IMAGE}\n{lines}\n"


REFUSED = [
    ("privileged", service("privileged: true"), "app", "privileged"),
    ("host bind", service("volumes: ['/etc:/host']"), "app", "volumes"),
    ("docker socket", service("volumes: ['/var/run/docker.sock:/sock']"), "app", "volumes"),
    ("cap_add", service("cap_add: [SYS_ADMIN]"), "app", "cap_add"),
    ("devices", service("devices: ['/dev/null:/dev/x']"), "app", "devices"),
    ("network_mode host", service("network_mode: host"), "app", "network_mode"),
    ("network_mode container", service("network_mode: 'container:abc'"), "app", "network_mode"),
    ("pid host", service("pid: host"), "app", "pid"),
    ("ipc host", service("ipc: host"), "app", "ipc"),
    ("uts host", service("uts: host"), "app", "uts"),
    ("userns host", service("userns_mode: host"), "app", "userns_mode"),
    ("security_opt", service("security_opt: ['seccomp=unconfined']"), "app", "security_opt"),
    ("sysctls", service("sysctls: {net.ipv4.ip_forward: 1}"), "app", "sysctls"),
    ("cgroup host", service("cgroup: host"), "app", "cgroup"),
    ("volumes_from container", service("volumes_from: ['container:abc']"), "app", "volumes_from"),
    ("use_api_socket", service("use_api_socket: true"), "app", "use_api_socket"),
    ("env_file shadow", service("env_file: /etc/shadow"), "app", "env_file"),
    (
        "env_file long form",
        service("env_file: [{path: ../../x.env, required: false}]"),
        "app",
        "env_file",
    ),
    ("env_file variable", service("env_file: ${HOME}/x.env"), "app", "env_file"),
    ("label_file", service("label_file: /etc/passwd"), "app", "label_file"),
    ("extends file", service("extends: {file: /etc/compose.yaml, service: x}"), "app", "extends"),
    ("build context root", service("build: {context: /}"), "app", "build.context"),
    ("build context short", service("build: /"), "app", "build.context"),
    (
        "build dockerfile",
        service("build: {context: ., dockerfile: /etc/Dockerfile}"),
        "app",
        "build.dockerfile",
    ),
    (
        "build remote",
        service("build: {context: 'https://example.com/repo.git'}"),
        "app",
        "build.context",
    ),
    (
        "secrets file",
        service("secrets: [pw]") + "secrets:\n  pw:\n    file: /etc/shadow\n",
        "",
        "secrets.pw.file",
    ),
    (
        "configs file",
        service("configs: [c]") + "configs:\n  c:\n    file: /etc/passwd\n",
        "",
        "configs.c.file",
    ),
    ("include", "include:\n  - /etc/compose.yaml\n" + service("command: 'true'"), "", "include"),
    (
        "volume driver opts",
        service("volumes: ['data:/d']")
        + "volumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /etc}\n",
        "",
        "volumes.data.driver_opts",
    ),
    ("reserved label", service("labels: {dockyard.owner: me}"), "app", "labels"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_key_creates_nothing(case, cast, login, local_host, docker_client):
    _name, compose_text, svc, key = case
    response = login(cast.operator).post(
        reverse("stacks:new"),
        {
            "name": "bad",
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "source": "editor",
            "compose": compose_text,
        },
    )
    assert response.status_code == 422
    error = " ".join(response.context["form"].non_field_errors())
    if svc:
        assert f"Service '{svc}'" in error, error
    assert f"key '{key}'" in error.lower(), error
    assert "root:" not in error  # nothing of a refused file is read back
    assert not Stack.objects.exists()
    assert not Job.objects.exists()


def test_other_teams_volume_is_refused(cast, login, local_host, engine_cleanup):
    name = unique("beta-data")
    engine_cleanup.volumes.create(name, labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID})
    resource_services.sync_volumes(local_host)
    Volume.objects.filter(host=local_host, name=name).update(team=cast.beta)
    compose_text = (
        service("volumes: ['data:/d']")
        + f"volumes:\n  data:\n    external: true\n    name: {name}\n"
    )
    with pytest.raises(StackPolicyError) as refused:
        services.create_stack(
            Actor(cast.operator),
            host=local_host,
            team=cast.alpha,
            name="v",
            source="editor",
            compose_text=compose_text,
        )
    assert f"Volume '{name}' is not one of alpha's volumes" in refused.value.message
    assert not Stack.objects.exists()


def test_other_teams_network_is_refused(cast, local_host, engine_cleanup):
    name = unique("beta-net")
    net = engine_cleanup.networks.create(name, labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID})
    try:
        resource_services.sync_networks(local_host)
        Network.objects.filter(host=local_host, docker_id=net.id).update(team=cast.beta)
        compose_text = (
            service("networks: [n]") + f"networks:\n  n:\n    external: true\n    name: {name}\n"
        )
        with pytest.raises(StackPolicyError) as refused:
            services.create_stack(
                Actor(cast.operator),
                host=local_host,
                team=cast.alpha,
                name="n",
                source="editor",
                compose_text=compose_text,
            )
        assert "is not one of alpha's networks" in refused.value.message
        assert "networks.n" in refused.value.message
    finally:
        net.remove()


def test_dashboard_admin_may_use_privileged_options(cast, local_host):
    config = services.precheck(
        cast.admin,
        local_host,
        cast.alpha,
        service("privileged: true\ncap_add: [NET_ADMIN]"),
        "",
        "dy-x-000000",
    )
    assert config["services"]["app"]["privileged"] is True


def test_invalid_yaml_is_a_clear_message(cast, login, local_host):
    response = login(cast.operator).post(
        reverse("stacks:new"),
        {
            "name": "y",
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "source": "editor",
            "compose": "services:\n  a: [\n",
        },
    )
    assert response.status_code == 422
    assert "not valid YAML (line" in " ".join(response.context["form"].non_field_errors())
    assert not Stack.objects.exists()


def test_compose_errors_are_reported(cast, local_host):
    with pytest.raises(StackPolicyError) as refused:
        services.precheck(
            cast.operator,
            local_host,
            cast.alpha,
            "services:\n  a:\n    image: x\n    ports: [notaport]\n",
            "",
            "dy-x-1",
        )
    assert "Docker Compose cannot read the file" in refused.value.message


@pytest.mark.parametrize(
    "line", ["DOCKER_HOST=tcp://10.0.0.1:2375", "COMPOSE_FILE=/etc/x.yaml", "not a line"]
)
def test_env_file_cannot_steer_compose(line):
    with pytest.raises(StackPolicyError):
        parse_env(line)


def test_env_file_values_interpolate(cast, local_host):
    config = services.precheck(
        cast.operator,
        local_host,
        cast.alpha,
        service("command: ['echo', '${WORD}']"),
        "WORD=hello\n",
        "dy-x-2",
    )
    assert config["services"]["app"]["command"] == ["echo", "hello"]


@pytest.mark.parametrize("slug", ["2048", "web"])
def test_gallery_templates_pass_the_policy_for_operators(slug, cast, local_host):
    from stacks import gallery

    template = gallery.get(slug)
    env_text, shown = gallery.env_from(template, {"PORT_1": "18016"} if slug == "2048" else {})
    config = services.precheck(
        cast.operator, local_host, cast.alpha, template["compose"], env_text, "dy-t-1", slug
    )
    assert config["services"]
    if slug == "2048":
        assert [p["published"] for p in config["services"]["game-1"]["ports"]] == ["18016"]
        assert config["services"]["game-1"]["build"]["context"].endswith("/src")


def test_template_variables_are_checked():
    from stacks import gallery

    template = gallery.get("2048")
    with pytest.raises(StackPolicyError, match="must be a number"):
        gallery.env_from(template, {"PORT_1": "80; rm -rf /"})
    with pytest.raises(StackPolicyError, match="Each port must be different"):
        gallery.env_from(template, {"PORT_1": "9000", "PORT_2": "9000"})
    with pytest.raises(StackPolicyError, match="one line"):
        gallery.env_from(template, {"IMAGE": "a\nDOCKER_HOST=tcp://x"})
