"""The mirror sync: what it adds, marks removed, and what it must not judge."""

from datetime import timedelta

import pytest
from django.utils import timezone

from containers.models import Container
from containers.services import sync_host

pytestmark = [pytest.mark.live]


def test_a_row_the_engine_no_longer_lists_is_marked_removed(local_host):
    row = Container.objects.create(host=local_host, docker_id="f" * 64, name="ghost")
    Container.objects.filter(pk=row.pk).update(first_seen=timezone.now() - timedelta(minutes=1))
    sync_host(local_host)
    row.refresh_from_db()
    assert row.removed_at is not None and row.state == "removed"


def test_a_row_first_seen_after_the_list_call_is_not_marked_removed(local_host):
    # A create job writes its row while a sync's list call is in flight: that list
    # cannot contain the container, so it must not call it gone.
    row = Container.objects.create(host=local_host, docker_id="e" * 64, name="newborn")
    Container.objects.filter(pk=row.pk).update(first_seen=timezone.now() + timedelta(minutes=1))
    sync_host(local_host)
    row.refresh_from_db()
    assert row.removed_at is None


def test_a_container_marked_removed_by_mistake_comes_back(make_container, cast):
    row = make_container(team=cast.alpha)
    Container.objects.filter(pk=row.pk).update(removed_at=timezone.now(), state="removed")
    sync_host(row.host)
    row.refresh_from_db()
    assert row.removed_at is None and row.state == "running"
    assert row.team == cast.alpha  # ownership survives
    assert Container.objects.filter(docker_id=row.docker_id).count() == 1
