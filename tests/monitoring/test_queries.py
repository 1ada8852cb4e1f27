from datetime import timedelta

import pytest
from django.utils import timezone

from containers.models import Container
from monitoring.models import Sample
from monitoring.queries import METRICS, window_average


@pytest.fixture
def two_containers(local_host):
    return [
        Container.objects.create(host=local_host, docker_id=f"{i}" * 64, name=f"c{i}")
        for i in (1, 2)
    ]


def test_every_metric_is_a_sample_field():
    fields = {f.name for f in Sample._meta.get_fields()}
    assert set(METRICS) <= fields


def test_window_average_covers_only_the_window_and_skips_nulls(two_containers):
    a, b = two_containers
    now = timezone.now()
    rows = [
        Sample(container=a, host=a.host, at=now - timedelta(seconds=5), cpu_percent=10),
        Sample(container=a, host=a.host, at=now - timedelta(seconds=15), cpu_percent=30),
        Sample(container=a, host=a.host, at=now - timedelta(seconds=25), cpu_percent=None),
        Sample(container=a, host=a.host, at=now - timedelta(seconds=90), cpu_percent=500),
        Sample(container=b, host=b.host, at=now - timedelta(seconds=90), cpu_percent=50),
    ]
    Sample.objects.bulk_create(rows)
    assert window_average([a.pk, b.pk], "cpu_percent", 60, now=now) == {a.pk: 20.0}
    assert window_average([a.pk, b.pk], "cpu_percent", 120, now=now) == {
        a.pk: 180.0,
        b.pk: 50.0,
    }
    assert window_average([b.pk], "mem_bytes", 120, now=now) == {}


def test_window_average_refuses_an_unknown_metric(two_containers):
    with pytest.raises(ValueError):
        window_average([two_containers[0].pk], "cpu_percent; drop table", 60)
