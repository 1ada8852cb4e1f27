"""Container and host metrics: raw samples, their rollups, and how each host is read.

Field names of `Sample` are the metric names of `monitoring.queries.METRICS`. A rollup
row keeps, per metric, the average under the metric's own name and the maximum under
`<metric>_max`, so code reading a series asks raw samples and rollups for the same
field names.
"""

from django.db import models

from containers.models import Container
from dashboard.models import Host


class MetricFields(models.Model):
    """The metrics of `monitoring.queries.METRICS`, one field each.

    Null means "not measured this time": the first sample of a container has no
    rates yet, a container without a memory limit has no limit or percent.
    """

    cpu_percent = models.FloatField(null=True, blank=True)  # of one core, as docker stats
    cpu_throttled_percent = models.FloatField(null=True, blank=True)  # of CFS periods
    mem_bytes = models.BigIntegerField(null=True, blank=True)  # working set
    mem_usage_bytes = models.BigIntegerField(null=True, blank=True)
    mem_limit_bytes = models.BigIntegerField(null=True, blank=True)  # null: no limit
    mem_percent = models.FloatField(null=True, blank=True)  # working set / limit
    net_rx_bps = models.FloatField(null=True, blank=True)  # bytes per second
    net_tx_bps = models.FloatField(null=True, blank=True)
    blk_read_bps = models.FloatField(null=True, blank=True)
    blk_write_bps = models.FloatField(null=True, blank=True)
    pids = models.IntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class MetricMaxFields(models.Model):
    """The maximum of each metric over a rollup's period."""

    cpu_percent_max = models.FloatField(null=True, blank=True)
    cpu_throttled_percent_max = models.FloatField(null=True, blank=True)
    mem_bytes_max = models.BigIntegerField(null=True, blank=True)
    mem_usage_bytes_max = models.BigIntegerField(null=True, blank=True)
    mem_limit_bytes_max = models.BigIntegerField(null=True, blank=True)
    mem_percent_max = models.FloatField(null=True, blank=True)
    net_rx_bps_max = models.FloatField(null=True, blank=True)
    net_tx_bps_max = models.FloatField(null=True, blank=True)
    blk_read_bps_max = models.FloatField(null=True, blank=True)
    blk_write_bps_max = models.FloatField(null=True, blank=True)
    pids_max = models.IntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class HostMetricFields(models.Model):
    cpu_percent = models.FloatField(null=True, blank=True)  # of all the host's cores
    ncpu = models.PositiveIntegerField(null=True, blank=True)
    mem_used_bytes = models.BigIntegerField(null=True, blank=True)
    mem_total_bytes = models.BigIntegerField(null=True, blank=True)
    load1 = models.FloatField(null=True, blank=True)
    load5 = models.FloatField(null=True, blank=True)
    load15 = models.FloatField(null=True, blank=True)
    disk_used_bytes = models.BigIntegerField(null=True, blank=True)  # Docker data root
    disk_total_bytes = models.BigIntegerField(null=True, blank=True)

    class Meta:
        abstract = True


HOST_METRICS = (
    "cpu_percent",
    "ncpu",
    "mem_used_bytes",
    "mem_total_bytes",
    "load1",
    "load5",
    "load15",
    "disk_used_bytes",
    "disk_total_bytes",
)


class Sample(MetricFields):
    """One container's figures at one sweep (kept `METRICS_RAW_RETENTION` seconds)."""

    container = models.ForeignKey(
        Container, on_delete=models.CASCADE, related_name="metric_samples", db_index=False
    )
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+", db_index=False)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["container", "at"], name="sample_container_at"),
            models.Index(fields=["host", "at"], name="sample_host_at"),
        ]

    def __str__(self):
        return f"sample of {self.container_id} at {self.at:%Y-%m-%d %H:%M:%S}"


class Rollup(MetricFields, MetricMaxFields):
    """A container's figures over `period` seconds starting at `at`: average and max.

    5-minute rollups are made from raw samples, hourly ones from 5-minute rollups;
    `count` is how many raw samples are behind the row, so averages of averages are
    weighted right.
    """

    FIVE_MINUTES = 300
    HOUR = 3600
    PERIODS = ((FIVE_MINUTES, "5 minutes"), (HOUR, "1 hour"))

    container = models.ForeignKey(
        Container, on_delete=models.CASCADE, related_name="metric_rollups", db_index=False
    )
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+", db_index=False)
    period = models.PositiveIntegerField(choices=PERIODS)
    at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["container", "period", "at"], name="one_rollup_per_bucket"
            )
        ]
        indexes = [
            models.Index(fields=["period", "at"], name="rollup_period_at"),
            models.Index(fields=["host", "period", "at"], name="rollup_host_period_at"),
        ]

    def __str__(self):
        return f"{self.period}s rollup of {self.container_id} at {self.at:%Y-%m-%d %H:%M}"


class HostSample(HostMetricFields):
    """A host's totals at one sweep (raw, or a rollup when `period` is not 0)."""

    RAW = 0
    PERIODS = ((RAW, "raw"), (Rollup.FIVE_MINUTES, "5 minutes"), (Rollup.HOUR, "1 hour"))

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+", db_index=False)
    period = models.PositiveIntegerField(choices=PERIODS, default=RAW)
    at = models.DateTimeField()
    containers = models.PositiveIntegerField(default=0)  # sampled in this sweep

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "period", "at"], name="one_host_sample")
        ]
        indexes = [models.Index(fields=["period", "at"], name="hostsample_period_at")]

    def __str__(self):
        return f"{self.host_id} totals at {self.at:%Y-%m-%d %H:%M:%S}"


class Collection(models.Model):
    """How the collector reads a host, decided by trying, and how its last sweep went."""

    class Method(models.TextChoices):
        UNKNOWN = "", "not yet tried"
        CGROUP = "cgroup", "cgroup files (local)"
        STATS_API = "stats-api", "Docker stats API (one-shot)"

    class Mode(models.TextChoices):
        AUTO = "auto", "Try cgroup files, else the stats API"
        STATS_API = "stats-api", "Always the stats API"

    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="metrics_collection")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.AUTO)
    method = models.CharField(max_length=16, choices=Method.choices, blank=True)
    reason = models.CharField(max_length=255, blank=True)  # why this method (the probe's word)
    probed_at = models.DateTimeField(null=True, blank=True)
    last_sweep_at = models.DateTimeField(null=True, blank=True)
    last_sweep_ms = models.FloatField(null=True, blank=True)
    last_containers = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    def __str__(self):
        return f"{self.host_id}: {self.method or 'unknown'}"
