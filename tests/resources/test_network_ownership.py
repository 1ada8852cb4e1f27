"""Networks are owned like volumes: the team network allowlist is ownership, not text."""

import pytest
from django.conf import settings
from django.urls import reverse

from dashboard.models import Job
from resources import services
from resources.models import Network
from tests.support.helpers import RUN_LABEL, TEST_LABEL, create_form_data, unique, wait_job

pytestmark = [pytest.mark.live]

# This run's labels: its cleanup removes what they mark, and no other run's does.
LABELS = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}


def test_operator_creates_a_team_network_and_a_container_joins_it(
    cast, login, local_host, engine_cleanup, celery_worker
):
    net, name = unique("alpha-net"), unique("joined")
    client = login(cast.operator)

    client.post(
        reverse("resources:create", args=["network"]),
        {"host": local_host.pk, "team": cast.alpha.pk, "name": net},
    )
    job = wait_job(Job.objects.get(kind="network.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Network.objects.get(name=net)
    assert (row.team, row.owner, row.docker_id) == (cast.alpha, cast.operator, job.created_id)

    response = client.post(
        reverse("containers:new"), create_form_data(local_host, cast.alpha, name, network=net)
    )
    assert response.status_code == 302
    created = wait_job(Job.objects.filter(kind="container.create").get())
    assert created.status == Job.Status.SUCCEEDED, created.message
    networks = engine_cleanup.api.inspect_container(name)["NetworkSettings"]["Networks"]
    assert list(networks) == [net]

    # The other team can neither see nor join it.
    outsider = login(cast.outsider)
    assert net not in outsider.get(reverse("resources:network_list")).content.decode()
    refused = outsider.post(
        reverse("containers:new"),
        create_form_data(local_host, cast.beta, unique("intruder"), network=net),
    )
    assert refused.status_code == 422
    assert "is not one of beta's networks" in " ".join(refused.context["form"].errors["network"])


def test_a_same_named_network_made_outside_is_not_the_teams(
    cast, login, local_host, engine_cleanup
):
    """Names are not identity: a CLI network with the team network's name is not joined."""
    net = unique("dup")
    engine_cleanup.networks.create(net, labels=LABELS)
    services.sync_networks(local_host)  # found on the engine: nobody's

    response = login(cast.operator).post(
        reverse("containers:new"),
        create_form_data(local_host, cast.alpha, unique("c"), network=net),
    )

    assert response.status_code == 422
    assert Network.objects.get(name=net).team is None


@pytest.mark.parametrize("who,status", [("outsider", 404), ("viewer", 403), ("operator", 302)])
def test_remove_network_is_gated(
    cast, login, local_host, engine_cleanup, celery_worker, who, status
):
    net = engine_cleanup.networks.create(unique("rm-net"), labels=LABELS)
    services.sync_networks(local_host)
    Network.objects.filter(docker_id=net.id).update(team=cast.alpha)
    row = Network.objects.get(docker_id=net.id)

    response = login(getattr(cast, who)).post(reverse("resources:remove", args=["network", row.pk]))

    assert response.status_code == status
    if status == 302:
        job = wait_job(Job.objects.get(kind="network.remove"))
        assert job.status == Job.Status.SUCCEEDED, job.message
        assert net.id not in [n.id for n in engine_cleanup.networks.list()]
    else:
        assert net.id in [n.id for n in engine_cleanup.networks.list()]
