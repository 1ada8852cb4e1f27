"""The create policy (ARCHITECTURE.md, access model), enforced server-side whatever the form sends.

A non-admin operator posting a forbidden option by hand gets 422 with a message naming
the option, and neither a job nor a container comes of it; admins get the options.
"""

import docker
import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from containers.models import Container
from dashboard.models import AuditEntry, Job
from resources.models import Network, Volume
from resources.services import sync_volumes
from tests.support.helpers import (
    RUN_LABEL,
    TEST_LABEL,
    create_form_data,
    engine_names,
    engine_state,
    unique,
    wait_job,
)

pytestmark = [pytest.mark.live]

SOCK = "/var/run/docker.sock"
# The run label too: another test run's cleanup leaves this run's volumes alone.
MINE = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}

# (id, extra POST fields, form field the error is on (None: whole form), words it names)
FORBIDDEN = [
    ("privileged", {"privileged": "on"}, None, "privileged mode (privileged)"),
    ("privileged-true", {"privileged": "true"}, None, "(privileged)"),
    ("privileged-repeated", {"privileged": ["off", "on"]}, None, "(privileged)"),
    ("host-bind", {"volumes": "/etc:/x"}, "volumes", "'/etc' is a host path"),
    ("host-bind-root-ro", {"volumes": "data:/data\n/:/host:ro"}, "volumes", "'/' is a host path"),
    ("host-bind-relative", {"volumes": "./etc:/x"}, "volumes", "host path"),
    ("host-bind-socket-dir", {"volumes": "/var/run:/hostrun"}, "volumes", "host path"),
    ("docker-sock", {"volumes": f"{SOCK}:{SOCK}"}, "volumes", "Docker socket"),
    ("docker-sock-run", {"volumes": "/run/docker.sock:/d.sock:ro"}, "volumes", "Docker socket"),
    ("docker-sock-dotted", {"volumes": "/var/run/./docker.sock:/s"}, "volumes", "Docker socket"),
    ("docker-sock-as-name", {"volumes": "docker.sock:/x"}, "volumes", "Docker socket"),
    ("docker-sock-as-target", {"volumes": f"data:{SOCK}"}, "volumes", "Docker socket"),
    ("binds", {"binds": "/etc:/x"}, None, "(binds)"),
    ("binds-sock", {"binds": f"{SOCK}:{SOCK}"}, None, "(binds)"),
    ("mounts", {"mounts": "type=bind,source=/,target=/host"}, None, "(mounts)"),
    ("mounts-sock", {"mounts": f"type=bind,src={SOCK},dst={SOCK}"}, None, "(mounts)"),
    ("cap_add", {"cap_add": "SYS_ADMIN"}, None, "(cap_add)"),
    ("network-host", {"network": "host"}, "network", "Network 'host' is not allowed"),
    ("network-container", {"network": "container:abc123"}, "network", "'container:abc123'"),
    ("network_mode-host", {"network_mode": "host"}, None, "(network_mode)"),
    ("network_mode-container", {"network_mode": "container:abc"}, None, "(network_mode)"),
    ("pid_mode", {"pid_mode": "host"}, None, "(pid_mode)"),
    ("pid_mode-container", {"pid_mode": "container:abc"}, None, "(pid_mode)"),
    ("ipc_mode", {"ipc_mode": "host"}, None, "(ipc_mode)"),
    ("uts_mode", {"uts_mode": "host"}, None, "(uts_mode)"),
    ("userns_mode", {"userns_mode": "host"}, None, "(userns_mode)"),
    ("devices", {"devices": "/dev/fuse"}, None, "host devices (devices)"),
    ("security_opt", {"security_opt": "seccomp=unconfined"}, None, "(security_opt)"),
    ("sysctls", {"sysctls": "net.ipv4.ip_forward=1"}, None, "sysctls (sysctls)"),
    ("cgroup_parent", {"cgroup_parent": "/"}, None, "(cgroup_parent)"),
    ("runtime", {"runtime": "runc"}, None, "(runtime)"),
    ("volumes_from", {"volumes_from": "some-container"}, None, "(volumes_from)"),
    (
        "volume_driver_opts",
        {"volume_driver_opts": "type=none,o=bind,device=/"},
        None,
        "(volume_driver_opts)",
    ),
]


def create_data(cast, host, name, **extra):
    return create_form_data(host, cast.alpha, name, **extra)


def form_errors(response, field):
    form = response.context["form"]
    return form.non_field_errors() if field is None else form.errors.get(field, [])


def give_volume(host, name, team):
    """What a dashboard admin's assign does: the mirrored volume becomes the team's."""
    sync_volumes(host)
    assert Volume.objects.present().filter(host=host, name=name).update(team=team) == 1


@pytest.fixture
def post_create(cast, login, local_host):
    def post(user, name, **extra):
        return login(user).post(
            reverse("containers:new"), create_data(cast, local_host, name, **extra)
        )

    return post


@pytest.mark.parametrize(
    "extra, field, words", [f[1:] for f in FORBIDDEN], ids=[f[0] for f in FORBIDDEN]
)
def test_forbidden_option_posted_by_operator_gets_422_and_changes_nothing(
    cast, post_create, engine_cleanup, extra, field, words
):
    name = unique("pol")

    response = post_create(cast.operator, name, **extra)

    assert response.status_code == 422
    errors = " ".join(form_errors(response, field))
    assert words in errors, response.context["form"].errors
    # The message is on the page, too (HTML-escaped like any text).
    assert words.replace("'", "&#x27;") in response.content.decode()
    assert not Job.objects.exists()
    assert not AuditEntry.objects.exists()
    assert not Container.objects.filter(name=name).exists()
    assert name not in engine_names(engine_cleanup)


def test_the_same_form_without_forbidden_options_creates_the_container(
    cast, post_create, local_host, engine_cleanup, celery_worker
):
    # The control for the refusals above: the base data is valid for the operator.
    name = unique("pol")
    volume = engine_cleanup.volumes.create(unique("vol"), labels=MINE)
    give_volume(local_host, volume.name, cast.alpha)  # a team mounts only its own volumes

    response = post_create(cast.operator, name, volumes=f"{volume.name}:/data")

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    info = engine_cleanup.api.inspect_container(name)
    assert info["HostConfig"]["Privileged"] is False
    assert [(m["Type"], m["Name"]) for m in info["Mounts"]] == [("volume", volume.name)]


@pytest.fixture
def host_bound_volume(engine_cleanup):
    """A named volume that is really a bind of a host path, as made with the CLI."""
    volume = engine_cleanup.volumes.create(
        name=unique("hostvol"),
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": "/tmp"},
        labels=MINE,
    )
    yield volume.name
    # engine_cleanup removes labelled containers and volumes after this.


@pytest.mark.parametrize("owned", [True, False], ids=["alphas", "unowned"])
def test_named_volume_binding_a_host_path_is_refused_to_operator_by_the_form(
    cast, post_create, local_host, engine_cleanup, host_bound_volume, owned
):
    if owned:
        give_volume(local_host, host_bound_volume, cast.alpha)
    name = unique("pol")

    response = post_create(cast.operator, name, volumes=f"{host_bound_volume}:/data")

    # The form reads the engine's volumes now: it knows what the name stands for.
    assert response.status_code == 422
    words = "binds a host path" if owned else "is not one of alpha's volumes on local"
    assert words in " ".join(form_errors(response, "volumes"))
    assert not Job.objects.exists()
    assert name not in engine_names(engine_cleanup)
    assert not Container.objects.filter(name=name).exists()


def test_named_volume_binding_a_host_path_is_refused_to_operator_at_run_time(
    cast, post_create, local_host, engine_cleanup, celery_worker
):
    name = unique("pol")
    swapped = unique("swapped")
    engine_cleanup.volumes.create(swapped, labels=MINE)
    give_volume(local_host, swapped, cast.alpha)

    # The job is queued when this block commits; before that, behind the dashboard's
    # back, alpha's plain volume is replaced by a host bind of the same name.
    with transaction.atomic():
        response = post_create(cast.operator, name, volumes=f"{swapped}:/data")
        assert response.status_code == 302
        job = Job.objects.get(kind="container.create")
        engine_cleanup.volumes.get(swapped).remove()
        engine_cleanup.volumes.create(
            name=swapped,
            driver="local",
            driver_opts={"type": "none", "o": "bind", "device": "/tmp"},
            labels=MINE,
        )

    job = wait_job(job)
    assert job.status == Job.Status.FAILED
    # Either check refuses it: the host bind, or (when the re-creation fell in another
    # second than the first creation) ownership, since a volume re-created behind the
    # dashboard's back is nobody's. Both are run-time refusals that create nothing.
    refusals = (
        f"Volume '{swapped}' binds a host path",
        f"Volume '{swapped}' is not one of alpha's volumes",
    )
    assert job.message.startswith(refusals), job.message
    assert name not in engine_names(engine_cleanup)
    assert not engine_cleanup.containers.list(
        all=True, filters={"label": f"dockyard.nonce={job.nonce}"}
    )
    assert not Container.objects.filter(name=name).exists()
    entry = AuditEntry.objects.get(action="container.create")
    assert (entry.username, entry.result) == ("operator", AuditEntry.Result.FAILED)


def test_named_volume_binding_a_host_path_is_allowed_to_admin(
    cast, post_create, engine_cleanup, celery_worker, host_bound_volume
):
    name = unique("pol")

    response = post_create(cast.admin, name, volumes=f"{host_bound_volume}:/data")

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    mounts = engine_cleanup.api.inspect_container(name)["Mounts"]
    assert [(m["Name"], m["Destination"]) for m in mounts] == [(host_bound_volume, "/data")]


def test_admin_gets_host_binds_capabilities_and_host_namespaces(
    cast, post_create, engine_cleanup, celery_worker
):
    name = unique("priv")

    response = post_create(
        cast.admin,
        name,
        cap_add="NET_ADMIN",
        pid_mode="host",
        ipc_mode="host",
        volumes="/tmp:/hosttmp:ro",
    )

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    info = engine_cleanup.api.inspect_container(name)
    assert info["State"]["Status"] == "running"
    host_config = info["HostConfig"]
    assert (host_config["CapAdd"], host_config["PidMode"], host_config["IpcMode"]) == (
        ["NET_ADMIN"],
        "host",
        "host",
    )
    assert "/tmp:/hosttmp:ro" in host_config["Binds"]
    bind = next(m for m in info["Mounts"] if m["Destination"] == "/hosttmp")
    assert (bind["Type"], bind["Source"], bind["RW"]) == ("bind", "/tmp", False)
    row = Container.objects.get(name=name)
    assert (row.owner, row.team) == (cast.admin, cast.alpha)


def privileged_containers_run(client):
    """Can this engine start a privileged container at all? (Not inside every sandbox.)"""
    try:
        client.containers.run(settings.TEST_IMAGE, ["true"], privileged=True, labels=MINE)
    except docker.errors.APIError:
        return False
    return True


def test_admin_gets_privileged_mode_with_a_host_bind(
    cast, post_create, engine_cleanup, celery_worker
):
    name = unique("priv")

    response = post_create(cast.admin, name, privileged="on", volumes="/tmp:/hosttmp")

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    if privileged_containers_run(engine_cleanup):
        assert job.status == Job.Status.SUCCEEDED, job.message
        info = engine_cleanup.api.inspect_container(name)
        assert info["HostConfig"]["Privileged"] is True
        assert "/tmp:/hosttmp:rw" in info["HostConfig"]["Binds"]
        return
    # An engine that cannot run privileged containers (a sandboxed dockerd lacking
    # capabilities): the policy still let the admin through to the engine, whose
    # own error is reported, and the half-made container is not left behind.
    assert job.status == Job.Status.FAILED
    assert "OCI runtime create failed" in job.message, job.message
    assert name not in engine_names(engine_cleanup)
    entry = AuditEntry.objects.get(action="container.create")
    assert entry.params["privileged"] == {"privileged": True}
    assert entry.params["binds"] == [{"path": "/tmp", "target": "/hosttmp", "mode": "rw"}]


@pytest.fixture
def team_network(engine_cleanup):
    """A user-defined network on the engine, gone after the test (containers first)."""
    network = engine_cleanup.networks.create(unique("net"), labels=MINE)
    yield network.name
    for c in engine_cleanup.containers.list(all=True, filters={"network": network.id}):
        c.remove(force=True, v=True)
    network.remove()


def test_network_must_be_one_of_the_teams_networks(
    cast, post_create, engine_cleanup, celery_worker, team_network
):
    name = unique("net")

    refused = post_create(cast.operator, name, network=team_network)

    assert refused.status_code == 422
    assert f"Network '{team_network}' is not one of alpha's networks on local" in " ".join(
        form_errors(refused, "network")
    )
    assert not Job.objects.exists()
    assert name not in engine_names(engine_cleanup)

    # Owned in the database, not listed by name: an admin gives the network to alpha.
    Network.objects.filter(name=team_network).update(team=cast.alpha)
    allowed = post_create(cast.operator, name, network=team_network)

    assert allowed.status_code == 302
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    info = engine_cleanup.api.inspect_container(name)
    assert engine_state(engine_cleanup, name) == "running"
    assert list(info["NetworkSettings"]["Networks"]) == [team_network]
