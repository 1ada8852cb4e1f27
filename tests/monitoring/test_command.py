"""`manage.py collect_metrics --once` and the beat tasks, on the real engine."""

import pytest
from django.core.management import call_command

from monitoring import collector, tasks
from monitoring.models import HostSample, Rollup, Sample
from tests.monitoring.conftest import BURN

pytestmark = [pytest.mark.live]


def test_collect_metrics_once_primes_itself_so_the_sample_has_rates(
    cast, make_container, local_host, capsys, settings
):
    settings.METRICS_PRIME_SECONDS = 0.5
    c = make_container(cast.owner, cast.alpha, command=BURN)
    call_command("collect_metrics", "--once")
    sample = Sample.objects.get(container=c)
    assert sample.cpu_percent is not None and sample.cpu_percent > 0
    assert sample.net_rx_bps is not None
    assert f"host {local_host.pk}: " in capsys.readouterr().out
    assert HostSample.objects.filter(host=local_host).count() == 1


def test_beat_tasks_sweep_then_roll_up_and_prune(cast, make_container, local_host):
    make_container(cast.owner, cast.alpha)
    collector.collect(prime=False)
    out = tasks.collect_metrics()
    assert out[local_host.pk] >= 1
    assert Sample.objects.filter(host=local_host).count() >= 2
    # Nothing is closed yet a few seconds in: rolling up writes nothing, deletes nothing.
    assert tasks.rollup_metrics() == {"rolled": 0, "deleted": 0}
    assert not Rollup.objects.exists()


def test_an_unreachable_host_is_skipped_by_the_beat_sweep(local_host):
    local_host.state = "unreachable"
    local_host.save()
    assert tasks.collect_metrics() == {}
