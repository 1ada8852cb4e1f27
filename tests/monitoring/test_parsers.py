"""The cgroup / proc / stats API parsers on contents captured from real engines.

Pure functions on captured inputs (tests/monitoring/fixtures/README.md says where
each file comes from); the collector's reads of live files are tested in
test_collector.py against the real engine.
"""

import json
from pathlib import Path

import pytest

from monitoring import cgroup

FIXTURES = Path(__file__).parent / "fixtures"


def reading(version, name):
    folder = FIXTURES / f"v{version}" / name
    meta = json.loads((folder / "meta.json").read_text())
    files = {p.name: p.read_text() for p in folder.iterdir()}
    parse = cgroup.counters_v1 if version == 1 else cgroup.counters_v2
    return parse(
        files,
        files["net_dev"],
        t_ns=meta["t_ns"],
        pid=meta["pid"],
        host_mem_total=meta["mem_total"],
    ), meta


def test_v1_cpu_burner_under_half_a_core_reads_about_50_percent_and_throttled():
    a, meta = reading(1, "burn-a")
    b, _ = reading(1, "burn-b")
    figures = cgroup.metrics(a, b, host_mem_total=meta["mem_total"])
    assert 40 <= figures["cpu_percent"] <= 60
    assert figures["cpu_throttled_percent"] > 30
    assert figures["mem_limit_bytes"] == 64 * 1024 * 1024
    assert 0 < figures["mem_percent"] < 5
    assert figures["pids"] == 1


def test_v1_without_limit_reports_no_limit_and_percent_of_host_memory():
    idle, meta = reading(1, "idle")
    assert (FIXTURES / "v1/idle/memory.limit_in_bytes").read_text().strip() == (
        "9223372036854771712"
    )
    figures = cgroup.metrics(None, idle, host_mem_total=meta["mem_total"])
    assert figures["mem_limit_bytes"] is None
    assert figures["mem_percent"] == pytest.approx(figures["mem_bytes"] * 100 / meta["mem_total"])
    # The first reading has nothing to take a rate against.
    assert figures["cpu_percent"] is None and figures["net_rx_bps"] is None


def test_v1_working_set_counts_tmpfs_memory_held():
    held, meta = reading(1, "memhold")
    figures = cgroup.metrics(None, held, host_mem_total=meta["mem_total"])
    # 40 MiB written to a tmpfs: shmem stays in the working set (not inactive file).
    assert figures["mem_bytes"] >= 40 * 1024 * 1024
    assert figures["mem_usage_bytes"] >= figures["mem_bytes"]


def test_v1_restart_changes_pid_and_drops_the_rates():
    before, meta = reading(1, "burn-b")
    after, _ = reading(1, "restarted")
    assert before.pid != after.pid
    assert after.cpu_ns < before.cpu_ns  # the counter went back to zero
    figures = cgroup.metrics(before, after, host_mem_total=meta["mem_total"])
    assert figures["cpu_percent"] is None
    assert figures["net_rx_bps"] is None
    assert figures["mem_bytes"] is not None  # gauges are still good


def test_a_counter_that_goes_down_with_the_same_pid_drops_only_that_delta():
    a, _ = reading(1, "burn-a")
    b, _ = reading(1, "burn-b")
    reset = cgroup.Counters(**{**_fields(b), "cpu_ns": a.cpu_ns // 2})
    figures = cgroup.metrics(a, reset)
    assert figures["cpu_percent"] is None
    assert figures["net_rx_bps"] is not None


def test_v1_net_dev_skips_loopback():
    rx, tx = cgroup.parse_net_dev((FIXTURES / "v1/io-b/net_dev").read_text())
    assert (rx, tx) == (964, 378)
    rx, tx = cgroup.parse_net_dev((FIXTURES / "v2/burn-a/net_dev").read_text())
    assert (rx, tx) == (964, 378)  # lo's 2000 bytes are not counted


def test_v1_blkio_sums_read_and_write_over_devices_only():
    text = (FIXTURES / "v1-doc/blkio.throttle.io_service_bytes_recursive").read_text()
    assert cgroup.parse_blkio_v1(text) == (1048576 + 4096, 16777216)
    assert cgroup.parse_blkio_v1(
        (FIXTURES / "v1/io-b/blkio.throttle.io_service_bytes_recursive").read_text()
    ) == (0, 0)


def test_v2_burner_rates_limits_and_io():
    a, meta = reading(2, "burn-a")
    b, _ = reading(2, "burn-b")
    figures = cgroup.metrics(a, b, host_mem_total=meta["mem_total"])
    assert figures["cpu_percent"] == pytest.approx(50.0)  # 1 s of CPU in 2 s
    assert figures["cpu_throttled_percent"] == pytest.approx(75.0)  # 30 of 40 periods
    assert figures["mem_limit_bytes"] == 67108864
    assert figures["mem_bytes"] == 8503296 - 24576
    assert figures["blk_write_bps"] == pytest.approx(4 * 1024 * 1024 / 2)
    assert figures["blk_read_bps"] == 0
    assert figures["net_rx_bps"] == pytest.approx(1024)


def test_v2_max_limit_is_no_limit():
    idle, meta = reading(2, "idle")
    assert (FIXTURES / "v2/idle/memory.max").read_text().strip() == "max"
    assert idle.mem_limit is None
    assert cgroup.parse_int("max\n") is None


def test_v2_restart_is_a_changed_pid():
    before, _ = reading(2, "burn-b")
    after, _ = reading(2, "restarted")
    assert cgroup.metrics(before, after)["cpu_percent"] is None


def test_a_limit_at_or_above_host_memory_is_no_limit():
    assert cgroup.no_limit(32 * 2**30, host_mem_total=16 * 2**30) is None
    assert cgroup.no_limit(2**30, host_mem_total=16 * 2**30) == 2**30
    assert cgroup.no_limit(9223372036854771712) is None


def test_proc_cgroup_v1_and_v2():
    v1 = cgroup.parse_proc_cgroup((FIXTURES / "v1/burn-a/proc_cgroup").read_text())
    assert v1["cpuacct"].startswith("/docker/") and v1["memory"] == v1["cpu"]
    assert v1["name=systemd"] == v1["pids"]
    v2 = cgroup.parse_proc_cgroup((FIXTURES / "v2/burn-a/proc_cgroup").read_text())
    assert v2 == {"": "/system.slice/docker-" + "5c0ffee" * 9 + "5.scope"}


def test_stats_api_one_shot_replies_give_the_same_figures():
    a = cgroup.counters_from_stats(json.loads((FIXTURES / "api/burn-a.json").read_text()))
    b = cgroup.counters_from_stats(json.loads((FIXTURES / "api/burn-b.json").read_text()))
    assert b.t_ns - a.t_ns == 2_189_069_415  # the engine's "read" times, to the ns
    figures = cgroup.metrics(a, b, host_mem_total=25276510208)
    assert 45 <= figures["cpu_percent"] <= 55  # docker stats said 52.48 %
    assert figures["mem_limit_bytes"] == 64 * 1024 * 1024
    assert figures["pids"] == 1
    assert figures["blk_read_bps"] == 0


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-11-28T13:41:30.964172647Z", 1795873290964172647),
        ("2026-11-28T13:41:30Z", 1795873290000000000),
        ("2026-11-28T14:41:30.5+01:00", 1795873290500000000),
        ("0001-01-01T00:00:00Z", None),
        ("junk", None),
        ("", None),
    ],
)
def test_engine_time(value, expected):
    assert cgroup.parse_engine_time(value) == expected


def test_host_files():
    assert cgroup.parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n") == (
        150,
        1000,
    )
    total, used = cgroup.parse_meminfo(
        "MemTotal:       24684092 kB\nMemFree:        23025500 kB\nMemAvailable:   23846900 kB\n"
    )
    assert total == 24684092 * 1024 and used == (24684092 - 23846900) * 1024
    assert cgroup.parse_loadavg("0.52 0.40 0.33 2/345 12345\n") == (0.52, 0.40, 0.33)
    assert cgroup.host_cpu_percent((150, 1000), (250, 1200)) == pytest.approx(50.0)
    assert cgroup.host_cpu_percent(None, (250, 1200)) is None


def _fields(counters):
    return {name: getattr(counters, name) for name in counters.__dataclass_fields__}


def test_keyed_value_finds_one_key_anywhere_and_not_a_longer_one():
    text = (FIXTURES / "v1/memhold/memory.stat").read_text()
    assert (
        cgroup.keyed_value(text, "total_inactive_file")
        == cgroup.parse_keyed(text)["total_inactive_file"]
    )
    assert cgroup.keyed_value(text, "cache") == 41947136  # the first line
    assert cgroup.keyed_value(text, "inactive_file") == 0  # not total_inactive_file
    assert cgroup.keyed_value(text, "nope") is None
    assert cgroup.keyed_value("a 1\nb 2", "b") == 2  # no newline at the end


def test_v1_limit_from_memory_stat_equals_limit_in_bytes():
    folder = FIXTURES / "v1" / "burn-a"
    files = {p.name: p.read_text() for p in folder.iterdir()}
    with_file = cgroup.counters_v1(files, None, t_ns=0)
    del files["memory.limit_in_bytes"]
    assert cgroup.counters_v1(files, None, t_ns=0).mem_limit == with_file.mem_limit == 64 * 2**20
