"""/metrics: the latest sweep of every host in the Prometheus text format.

A custom collector (prometheus_client) over the stored samples: nothing is kept in
process memory, so any web process answers the same, and a scrape costs a few
queries whatever the number of viewers.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from containers.models import Container

from .models import Collection, HostSample, Sample
from .queries import METRICS

HELP = {
    "cpu_percent": "CPU used, percent of one core (as docker stats)",
    "cpu_throttled_percent": "Share of CFS periods in which the container was throttled, percent",
    "mem_bytes": "Memory working set (usage minus inactive file cache), bytes",
    "mem_usage_bytes": "Memory usage including cache, bytes",
    "mem_limit_bytes": "Memory limit, bytes (absent: no limit)",
    "mem_percent": "Working set as a percent of the limit (or of host memory without one)",
    "net_rx_bps": "Network bytes received per second (all interfaces but lo)",
    "net_tx_bps": "Network bytes sent per second (all interfaces but lo)",
    "blk_read_bps": "Block device bytes read per second",
    "blk_write_bps": "Block device bytes written per second",
    "pids": "Processes and threads in the container",
}
HOST_HELP = {
    "cpu_percent": "Host CPU busy, percent of all cores",
    "ncpu": "Host CPU count",
    "mem_used_bytes": "Host memory used (total minus available), bytes",
    "mem_total_bytes": "Host memory, bytes",
    "load1": "Host load average over 1 minute",
    "disk_used_bytes": "Used bytes of the filesystem holding the Docker data root",
    "disk_total_bytes": "Size of the filesystem holding the Docker data root",
    "containers": "Containers sampled in the last sweep",
}


class LatestSamplesCollector:
    """Per-container gauges (labels host, container, team) from each host's last sweep."""

    def __init__(self, containers=None):
        # The containers whose figures may be shown (already narrowed by the caller).
        self.containers = containers if containers is not None else Container.objects.all()

    def collect(self):
        sweeps = {
            c.host_id: (c.host.name, c.last_sweep_at, c.method, c.last_sweep_ms)
            for c in Collection.objects.select_related("host").exclude(last_sweep_at=None)
        }
        families = {
            m: GaugeMetricFamily(
                f"dockyard_container_{m}", HELP[m], labels=["host", "container", "team"]
            )
            for m in METRICS
        }
        for host_id, (host_name, at, _, _) in sweeps.items():
            rows = (
                Sample.objects.filter(host_id=host_id, at=at, container__in=self.containers)
                .values("container__name", "container__team__name", *METRICS)
                .order_by("container__name")
            )
            for row in rows:
                labels = [host_name, row["container__name"], row["container__team__name"] or ""]
                for m in METRICS:
                    if row[m] is not None:
                        families[m].add_metric(labels, float(row[m]))
        yield from families.values()
        yield from self._hosts(sweeps)

    def _hosts(self, sweeps):
        families = {
            f: GaugeMetricFamily(f"dockyard_host_{f}", text, labels=["host"])
            for f, text in HOST_HELP.items()
        }
        sweep = GaugeMetricFamily(
            "dockyard_collector_sweep_seconds",
            "Duration of the collector's last sweep of the host",
            labels=["host", "method"],
        )
        for host_id, (host_name, at, method, ms) in sweeps.items():
            row = HostSample.objects.filter(host_id=host_id, period=0, at=at).values().first()
            if ms is not None:
                sweep.add_metric([host_name, method or "none"], ms / 1000)
            if row is None:
                continue
            for f, family in families.items():
                if row[f] is not None:
                    family.add_metric([host_name], float(row[f]))
        yield from families.values()
        yield sweep


def registry(containers=None):
    reg = CollectorRegistry(auto_describe=False)
    reg.register(LatestSamplesCollector(containers))
    return reg
