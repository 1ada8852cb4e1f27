"""Rollups and pruning: right figures, idempotent, and the tables stay bounded."""

from datetime import UTC, datetime, timedelta

import pytest

from containers.models import Container
from monitoring import retention
from monitoring.models import HostSample, Rollup, Sample

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def container(local_host):
    return Container.objects.create(host=local_host, docker_id="a" * 64, name="web")


def samples(container, start, count, step=10, cpu=lambda i: float(i), mem=lambda i: 1000 + i):
    Sample.objects.bulk_create(
        Sample(
            container=container,
            host=container.host,
            at=start + timedelta(seconds=i * step),
            cpu_percent=cpu(i),
            mem_bytes=mem(i),
        )
        for i in range(count)
    )


def test_five_minute_rollups_hold_average_and_max_of_closed_buckets(container):
    samples(container, T0, 60)  # 10 minutes of 10 s samples: cpu 0..59
    retention.rollup(now=T0 + timedelta(minutes=11))
    rows = list(Rollup.objects.filter(period=300).order_by("at"))
    assert [r.at for r in rows] == [T0, T0 + timedelta(minutes=5)]
    assert rows[0].count == 30 and rows[0].cpu_percent == pytest.approx(14.5)
    assert rows[0].cpu_percent_max == 29 and rows[1].cpu_percent_max == 59
    assert rows[0].mem_bytes == 1014 and rows[0].mem_bytes_max == 1029
    assert rows[0].net_rx_bps is None  # never measured stays unknown


def test_an_open_bucket_is_not_rolled_up(container):
    samples(container, T0, 20)
    retention.rollup(now=T0 + timedelta(minutes=3))
    assert not Rollup.objects.exists()


def test_rollup_twice_changes_nothing_and_a_late_sample_is_taken_in(container):
    samples(container, T0, 60)
    now = T0 + timedelta(minutes=11)
    retention.rollup(now=now)
    first = list(Rollup.objects.order_by("period", "at").values())
    retention.rollup(now=now)
    assert list(Rollup.objects.order_by("period", "at").values()) == first
    # A sweep stored late into the newest bucket: the next run includes it.
    Sample.objects.create(
        container=container, host=container.host, at=T0 + timedelta(minutes=9), cpu_percent=500
    )
    retention.rollup(now=now)
    newest = Rollup.objects.get(period=300, at=T0 + timedelta(minutes=5))
    assert newest.count == 31 and newest.cpu_percent_max == 500


def test_hourly_rollups_weight_five_minute_averages_by_samples(container):
    samples(container, T0, 360, cpu=lambda i: 10.0 if i < 180 else 30.0)  # one hour
    retention.rollup(now=T0 + timedelta(hours=1, minutes=2))
    hour = Rollup.objects.get(period=3600)
    assert hour.at == T0 and hour.count == 360
    assert hour.cpu_percent == pytest.approx(20.0) and hour.cpu_percent_max == 30.0


def test_a_gap_of_days_is_skipped_not_walked(container):
    samples(container, T0, 30)
    samples(container, T0 + timedelta(days=3), 30)
    retention.rollup(now=T0 + timedelta(minutes=6))
    retention.rollup(now=T0 + timedelta(days=3, minutes=6))
    assert Rollup.objects.filter(period=300).count() == 2


def test_prune_keeps_each_kind_its_retention_and_never_unrolled_raw(container, settings):
    settings.METRICS_RAW_HOURS = 24
    samples(container, T0, 60 * 26, step=60)  # 26 hours, one a minute
    now = T0 + timedelta(hours=26)
    # Nothing rolled up yet: raw samples are kept whatever their age.
    assert retention.prune(now=now) == 0
    for _ in range(2):  # catching up takes two runs (at most a day of buckets each)
        retention.rollup(now=now)
    retention.prune(now=now)
    oldest = Sample.objects.order_by("at").first().at
    assert oldest >= now - timedelta(hours=24)
    assert Rollup.objects.filter(period=300, at__lt=T0 + timedelta(hours=2)).exists()
    # 31 days later the 5-minute rows are gone, the hourly ones remain.
    later = now + timedelta(days=31)
    retention.prune(now=later)
    # (but for the newest hour, whose hourly row is not written yet)
    assert not Rollup.objects.filter(period=300, at__lt=now - timedelta(hours=2)).exists()
    assert Rollup.objects.filter(period=3600).count() >= 24
    retention.prune(now=now + timedelta(days=400))
    assert not Rollup.objects.filter(period=3600, at__lt=now).exists()


def test_host_totals_roll_up_too(local_host):
    HostSample.objects.bulk_create(
        HostSample(host=local_host, at=T0 + timedelta(seconds=10 * i), cpu_percent=i, load1=1.0)
        for i in range(30)
    )
    retention.rollup(now=T0 + timedelta(minutes=6))
    row = HostSample.objects.get(period=300)
    assert row.at == T0 and row.cpu_percent == pytest.approx(14.5) and row.load1 == 1.0
