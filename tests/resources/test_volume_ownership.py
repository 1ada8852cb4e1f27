"""Breach 1: named volumes were nobody's. Now they are owned like containers.

An operator of one team cannot mount another team's volume, nor an unowned one
(anonymous 64-hex volumes included); a new name becomes the team's volume; the
Volumes page shows each user only their teams' volumes, and the gate holds for
remove and assign.
"""

import pytest
from django.conf import settings
from django.urls import reverse

from dashboard.models import AuditEntry, Job
from resources import services
from resources.models import Volume
from tests.support.helpers import (
    RUN_LABEL,
    TEST_LABEL,
    create_form_data,
    engine_names,
    unique,
    wait_job,
)

pytestmark = [pytest.mark.live]

# This run's labels: its cleanup removes what they mark, and no other run's does.
LABELS = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}


@pytest.fixture
def red_volume(cast, local_host, engine_cleanup):
    """A volume of team beta (the outsider's team) holding a secret file."""
    name = unique("red-data")
    engine_cleanup.volumes.create(name, labels=LABELS)
    services.sync_volumes(local_host)
    Volume.objects.filter(host=local_host, name=name).update(team=cast.beta, owner=cast.outsider)
    return name


def post_create(client, host, team, name, **extra):
    return client.post(reverse("containers:new"), create_form_data(host, team, name, **extra))


def test_operator_cannot_mount_another_teams_volume(
    cast, login, local_host, red_volume, engine_cleanup, celery_worker
):
    name = unique("blue")

    response = post_create(
        login(cast.operator), local_host, cast.alpha, name, volumes=f"{red_volume}:/d"
    )

    assert response.status_code == 422
    errors = " ".join(response.context["form"].errors["volumes"])
    assert f"Volume '{red_volume}' is not one of alpha's volumes on local" in errors
    assert "beta" not in errors  # whose it is stays unsaid
    assert not Job.objects.exists()
    assert name not in engine_names(engine_cleanup)


def test_anonymous_unowned_volume_is_refused_to_operator(
    cast, login, local_host, engine_cleanup, celery_worker
):
    # An anonymous volume, named by its 64-hex id, left by a container made elsewhere.
    holder = engine_cleanup.containers.create(
        "dockyard-test/busybox:latest", "true", volumes=["/anon"], labels=LABELS
    )
    anon = holder.attrs["Mounts"][0]["Name"]
    holder.remove()
    assert len(anon) == 64
    try:
        response = post_create(
            login(cast.operator), local_host, cast.alpha, unique("anon"), volumes=f"{anon}:/d"
        )
        assert response.status_code == 422
        assert "is not one of alpha's volumes" in " ".join(
            response.context["form"].errors["volumes"]
        )
    finally:
        engine_cleanup.api.remove_volume(anon, force=True)


def test_a_new_volume_name_becomes_the_teams_volume(
    cast, login, local_host, engine_cleanup, celery_worker
):
    vol, name = unique("alpha-data"), unique("withvol")

    response = post_create(login(cast.operator), local_host, cast.alpha, name, volumes=f"{vol}:/d")

    assert response.status_code == 302, response.content[:500]
    job = wait_job(Job.objects.get(kind="container.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Volume.objects.get(host=local_host, name=vol)
    assert (row.team, row.owner, row.created_by_dashboard) == (cast.alpha, cast.operator, True)
    # …and the other team's operator cannot mount it in turn.
    refused = post_create(
        login(cast.outsider), local_host, cast.beta, unique("steal"), volumes=f"{vol}:/d"
    )
    assert refused.status_code == 422


def test_volume_created_behind_the_dashboards_back_before_the_job_runs_is_refused(
    cast, local_host, engine_cleanup, no_task_queue
):
    """The worker checks again: a volume that appeared after the form is not the team's."""
    from containers.services import request_create
    from dashboard import jobs
    from dashboard.audit import Actor

    vol, name = unique("late"), unique("late-c")
    spec = {
        "image": "dockyard-test/busybox:latest",
        "name": name,
        "command": ["sleep", "60"],
        "volumes": [{"name": vol, "target": "/d", "mode": "rw"}],
        "labels": LABELS,
    }
    job = request_create(Actor(cast.operator), local_host, cast.alpha, spec)
    # Between the form and the worker, someone makes that volume on the engine.
    engine_cleanup.volumes.create(vol, labels=LABELS)

    done = jobs.run(job.pk)  # the worker's code, run here

    assert done.status == Job.Status.FAILED
    assert f"Volume '{vol}' is not one of alpha's volumes on local" in done.message
    assert name not in engine_names(engine_cleanup)
    assert not Volume.objects.filter(name=vol, team=cast.alpha).exists()


def test_volumes_page_shows_each_user_their_teams_volumes_only(
    cast, login, local_host, red_volume, engine_cleanup
):
    mine = unique("alpha-vol")
    engine_cleanup.volumes.create(mine, labels=LABELS)
    services.sync_volumes(local_host)
    Volume.objects.filter(name=mine).update(team=cast.alpha)

    viewer_page = login(cast.viewer).get(reverse("resources:volume_list")).content.decode()
    outsider_page = login(cast.outsider).get(reverse("resources:volume_list")).content.decode()
    admin_page = login(cast.admin).get(reverse("resources:volume_list")).content.decode()

    assert mine in viewer_page and red_volume not in viewer_page
    assert red_volume in outsider_page and mine not in outsider_page
    assert mine in admin_page and red_volume in admin_page


@pytest.mark.parametrize(
    "who,status",
    [("outsider", 404), ("viewer", 403), ("operator", 302), ("teamadmin", 302), ("admin", 302)],
)
def test_remove_volume_is_gated_like_a_container_action(
    cast, login, local_host, engine_cleanup, celery_worker, who, status
):
    vol = unique("rm-vol")
    engine_cleanup.volumes.create(vol, labels=LABELS)
    services.sync_volumes(local_host)
    row = Volume.objects.get(name=vol)
    row.team = cast.alpha
    row.save()

    response = login(getattr(cast, who)).post(reverse("resources:remove", args=["volume", row.pk]))

    assert response.status_code == status
    if status == 302:
        job = wait_job(Job.objects.get(kind="volume.remove"))
        assert job.status == Job.Status.SUCCEEDED, job.message
        assert vol not in [v.name for v in engine_cleanup.volumes.list()]
        assert AuditEntry.objects.filter(action="volume.remove", result="ok").exists()
    else:
        assert vol in [v.name for v in engine_cleanup.volumes.list()]
        assert not Job.objects.exists()


def test_a_volume_in_use_is_not_removed_and_the_job_says_why(
    cast, login, local_host, make_container, engine_cleanup, celery_worker
):
    vol = unique("busy-vol")
    engine_cleanup.volumes.create(vol, labels=LABELS)
    make_container(owner=cast.owner, team=cast.alpha, volumes=[f"{vol}:/d"])
    services.sync_volumes(local_host)
    row = Volume.objects.get(name=vol)
    row.team = cast.alpha
    row.save()

    login(cast.operator).post(reverse("resources:remove", args=["volume", row.pk]))

    job = wait_job(Job.objects.get(kind="volume.remove"))
    assert job.status == Job.Status.FAILED
    assert "in use by a container" in job.message
    assert vol in [v.name for v in engine_cleanup.volumes.list()]


@pytest.mark.parametrize("who,status", [("teamadmin", 404), ("operator", 404), ("admin", 302)])
def test_assigning_an_unowned_volume_is_for_dashboard_admins(
    cast, login, local_host, engine_cleanup, who, status
):
    vol = unique("found")
    engine_cleanup.volumes.create(vol, labels=LABELS)
    services.sync_volumes(local_host)
    row = Volume.objects.get(name=vol)

    response = login(getattr(cast, who)).post(
        reverse("resources:assign", args=["volume", row.pk]), {"team": cast.alpha.pk}
    )

    assert response.status_code == status
    row.refresh_from_db()
    assert (row.team == cast.alpha) is (status == 302)


def test_create_volume_from_the_page_makes_a_team_volume(
    cast, login, local_host, engine_cleanup, celery_worker
):
    vol = unique("page-vol")

    response = login(cast.operator).post(
        reverse("resources:create", args=["volume"]),
        {"host": local_host.pk, "team": cast.alpha.pk, "name": vol},
    )

    assert response.status_code == 302
    job = wait_job(Job.objects.get(kind="volume.create"))
    assert job.status == Job.Status.SUCCEEDED, job.message
    row = Volume.objects.get(name=vol)
    assert (row.team, row.created_by_dashboard) == (cast.alpha, True)
    assert vol in [v.name for v in engine_cleanup.volumes.list()]


def test_a_team_volume_removed_and_made_again_behind_the_dashboard_is_nobodys(
    cast, login, local_host, engine_cleanup
):
    """A name is not an identity: the same name on a new volume does not keep the owner."""
    import time

    vol = unique("reborn")
    engine_cleanup.volumes.create(vol, labels=LABELS)
    services.sync_volumes(local_host)
    Volume.objects.filter(name=vol).update(team=cast.alpha)
    engine_cleanup.api.remove_volume(vol)
    time.sleep(1.1)  # the engine's CreatedAt has whole seconds
    engine_cleanup.volumes.create(vol, labels=LABELS)

    response = post_create(
        login(cast.operator), local_host, cast.alpha, unique("c"), volumes=f"{vol}:/d"
    )

    assert response.status_code == 422
    assert Volume.objects.get(name=vol).team is None


@pytest.mark.parametrize(
    "who,message",
    [
        ("operator", "The name '{}' cannot be used on local; choose another."),
        ("outsider", "A volume named '{}' already exists on local."),
    ],
)
def test_a_volume_name_clash_says_exists_only_of_a_volume_the_user_can_see(
    cast, login, local_host, red_volume, who, message
):
    # red_volume is beta's: the outsider (beta) sees it, alpha's operator must not learn of it.
    team = cast.alpha if who == "operator" else cast.beta
    client = login(getattr(cast, who))

    response = client.post(
        reverse("resources:create", args=["volume"]),
        {"host": local_host.pk, "team": team.pk, "name": red_volume},
        follow=True,
    )

    shown = [str(m) for m in response.context["messages"]]
    assert shown == [message.format(red_volume)]
    assert not Job.objects.exists()
