"""The collector against the real engine: cgroup files, pids, the stats API fallback."""

import json
import os
import subprocess
import time

import pytest

from monitoring import collector
from monitoring.models import Collection, HostSample, Sample
from monitoring.signals import sweep_done
from tests.monitoring.conftest import BURN, HOLD

pytestmark = [pytest.mark.live]


def two_sweeps(host, pause=2.0, watch_pid=None):
    """Prime, wait, and read again (stored): rates need two readings.

    With `watch_pid`, also returns that process's CPU % over the same two moments from
    /proc/<pid>/stat (the scheduler's own tick count, independent of cgroup accounting).
    """
    before = _ticks(watch_pid)
    collector.sweep_host(host, store=False)
    time.sleep(pause)
    result = collector.sweep_host(host)
    if watch_pid is None:
        return result
    (t0, c0), (t1, c1) = before, _ticks(watch_pid)
    return result, (c1 - c0) / os.sysconf("SC_CLK_TCK") / (t1 - t0) * 100


def _ticks(pid):
    if pid is None:
        return None
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return time.monotonic(), int(fields[11]) + int(fields[12])  # utime + stime


def docker_stats(container):
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", container.docker_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def mib(text):
    number, unit = float(text[:-3]), text[-3:]
    return number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_burner_reads_near_one_core_and_holder_its_working_set_as_docker_stats(
    cast, make_container, local_host, docker_client
):
    burner = make_container(cast.owner, cast.alpha, command=BURN)
    holder = make_container(cast.owner, cast.alpha, command=HOLD, tmpfs={"/data": ""})
    time.sleep(1)  # the holder has written its 48 MiB
    pid = docker_client.api.inspect_container(burner.docker_id)["State"]["Pid"]
    result, scheduler_says = two_sweeps(local_host, watch_pid=pid)
    assert result.error == "" and result.method == "cgroup"
    burn = result.figures[burner.pk]
    hold = result.figures[holder.pk]
    # Near a whole core, as much as this shared 2-core machine leaves it: the
    # scheduler's count for the loop's process over the same window is the yardstick.
    assert burn["cpu_percent"] <= 105, burn
    assert abs(burn["cpu_percent"] - scheduler_says) < 8, (burn, scheduler_says)
    # On a quiet machine that is a whole core (checked against the yardstick, not
    # asserted as such: other suites share these two cores and take their part).
    assert scheduler_says < 60 or burn["cpu_percent"] > 60, (burn, scheduler_says)
    assert burn["pids"] >= 1 and burn["mem_limit_bytes"] is None
    assert 48 * 2**20 <= hold["mem_bytes"] <= 56 * 2**20, hold
    assert hold["cpu_percent"] < burn["cpu_percent"]
    assert hold["net_rx_bps"] is not None and hold["blk_write_bps"] is not None
    # docker stats on the same containers, once: the same figures within a few points.
    theirs = docker_stats(burner)
    assert abs(float(theirs["CPUPerc"].rstrip("%")) - burn["cpu_percent"]) < 15
    theirs = docker_stats(holder)
    ours = collector.sweep_host(local_host).figures[holder.pk]["mem_bytes"] / 2**20
    assert abs(mib(theirs["MemUsage"].split(" / ")[0]) - ours) / ours < 0.05


def test_a_sweep_stores_samples_host_totals_and_the_method_and_signals(
    cast, make_container, local_host
):
    c = make_container(cast.owner, cast.alpha)
    got = []

    def receiver(sender, host_id, at, container_ids, **kwargs):
        got.append((host_id, at, container_ids))

    sweep_done.connect(receiver)
    try:
        result = two_sweeps(local_host, pause=0.5)
    finally:
        sweep_done.disconnect(receiver)
    sample = Sample.objects.get(container=c)
    assert sample.at == result.at and sample.host_id == local_host.pk
    assert sample.cpu_percent is not None and sample.mem_bytes > 0
    assert got == [(local_host.pk, result.at, list(result.figures))]
    assert c.pk in got[0][2]
    collection = Collection.objects.get(host=local_host)
    assert collection.method == Collection.Method.CGROUP
    assert "cgroup v1" in collection.reason or "cgroup v2" in collection.reason
    assert collection.last_containers == len(result.figures)
    totals = HostSample.objects.get(host=local_host)
    assert totals.cpu_percent is not None and 0 <= totals.cpu_percent <= 100
    assert totals.mem_total_bytes > totals.mem_used_bytes > 0
    assert totals.load1 is not None
    assert totals.disk_total_bytes > totals.disk_used_bytes > 0
    assert totals.ncpu >= 1


@pytest.mark.parametrize("mode", ["pidfd", "by-path"])
def test_a_restart_is_a_new_pid_found_by_inspect_and_drops_the_rates(
    cast, make_container, local_host, docker_client, settings, tmp_path, monkeypatch, mode
):
    if mode == "by-path":
        # /proc seen through another path (as a host's /proc mounted in a container):
        # no pidfd, no descriptor kept; the pid's cgroup file tells a restart instead.
        (tmp_path / "proc").symlink_to("/proc")
        settings.METRICS_PROC_ROOT = str(tmp_path / "proc")
        monkeypatch.setattr(collector, "_fd_budget", lambda: 0)
    c = make_container(cast.owner, cast.alpha, command=BURN)
    first = two_sweeps(local_host, pause=0.5)
    assert first.figures[c.pk]["cpu_percent"] is not None
    located = collector._state(local_host.pk).located[c.docker_id]
    assert (located.pidfd is not None and located.fds) if mode == "pidfd" else not located.fds
    old_pid = located.pid
    docker_client.api.restart(c.docker_id, timeout=0)
    after = collector.sweep_host(local_host)
    new_pid = collector._state(local_host.pk).located[c.docker_id].pid
    assert new_pid != old_pid
    assert after.figures[c.pk]["cpu_percent"] is None  # no rate across the restart
    assert after.figures[c.pk]["mem_bytes"] is not None
    time.sleep(0.5)
    assert collector.sweep_host(local_host).figures[c.pk]["cpu_percent"] > 0


def test_descriptors_are_closed_when_containers_go(cast, make_container, local_host):
    c = make_container(cast.owner, cast.alpha)
    collector.sweep_host(local_host, store=False)
    state = collector._state(local_host.pk)
    located = state.located[c.docker_id]
    fds = [fd for _, fd in located.fds] + [located.pidfd]
    target = {os.readlink(f"/proc/self/fd/{fd}") for fd in fds}
    assert any(c.docker_id in t for t in target)
    c.state = "exited"
    c.save()
    collector.sweep_host(local_host, store=False)
    assert c.docker_id not in state.located and located.fds is None
    open_now = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_now.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    assert not any(c.docker_id in t for t in open_now)
    collector.forget()
    assert collector._fds_open == 0


def test_a_host_whose_cgroups_are_not_readable_here_uses_the_stats_api(
    cast, make_container, local_host, settings, tmp_path, docker_client
):
    # As when the dashboard runs in a container: /proc here holds none of the pids.
    settings.METRICS_PROC_ROOT = str(tmp_path)
    c = make_container(cast.owner, cast.alpha, command=BURN)
    pid = docker_client.api.inspect_container(c.docker_id)["State"]["Pid"]
    result, scheduler_says = two_sweeps(local_host, pause=2.0, watch_pid=pid)
    collection = Collection.objects.get(host=local_host)
    assert collection.method == Collection.Method.STATS_API
    assert "no process" in collection.reason
    assert result.method == "stats-api"
    figures = result.figures[c.pk]
    # The engine's own timestamps bound its window, a little off ours: a wider margin.
    assert abs(figures["cpu_percent"] - scheduler_says) < 15, (figures, scheduler_says)
    assert figures["mem_bytes"] > 0 and figures["pids"] >= 1
    # Host totals of a host read remotely: only what the engine's info tells.
    totals = HostSample.objects.get(host=local_host)
    assert totals.ncpu >= 1 and totals.mem_total_bytes > 0 and totals.load1 is None


def test_an_admin_may_force_the_stats_api(cast, make_container, local_host):
    make_container(cast.owner, cast.alpha)
    Collection.objects.create(host=local_host, mode=Collection.Mode.STATS_API)
    result = collector.sweep_host(local_host)
    assert result.method == "stats-api" and result.samples >= 1
    assert Collection.objects.get(host=local_host).reason == "set by an admin"


def test_the_second_engine_is_tried_and_its_method_recorded(
    cast, make_container, second_host, second_engine
):
    c = make_container(cast.owner, cast.alpha, host=second_host, command=BURN)
    pid = int(second_engine.docker("inspect", "-f", "{{.State.Pid}}", c.docker_id).stdout)
    result, scheduler_says = two_sweeps(second_host, pause=1.0, watch_pid=pid)
    collection = Collection.objects.get(host=second_host)
    # Same kernel, same pid namespace: its cgroups are readable, so it is read locally.
    assert collection.method == Collection.Method.CGROUP, collection.reason
    assert abs(result.figures[c.pk]["cpu_percent"] - scheduler_says) < 8


def test_a_stopped_container_is_not_sampled(cast, make_container, local_host, docker_client):
    c = make_container(cast.owner, cast.alpha)
    collector.sweep_host(local_host, store=False)
    docker_client.api.kill(c.docker_id)
    c.state = "exited"
    c.save()
    result = collector.sweep_host(local_host)
    assert c.pk not in result.figures
    assert c.docker_id not in collector._state(local_host.pk).prev


def test_a_failing_sweep_done_receiver_does_not_stop_the_sweep(cast, make_container, local_host):
    make_container(cast.owner, cast.alpha)

    def broken(**kwargs):
        raise RuntimeError("alerting bug")

    sweep_done.connect(broken)
    try:
        results = collector.collect(hosts=[local_host])
    finally:
        sweep_done.disconnect(broken)
    assert results[0].error == "" and results[0].samples >= 1
    assert Sample.objects.filter(host=local_host).exists()
