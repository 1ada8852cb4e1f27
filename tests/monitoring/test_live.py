"""The stats socket on the real engine: each sweep arrives, access is re-checked,
and many viewers cost the engine nothing beyond the collector's own reads."""

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from containers.models import Container
from dashboard import engine as engine_module
from dashboard.models import Membership
from monitoring import collector
from tests.logs.support import headers_for
from tests.monitoring.support import open_stats_socket, receive_points

pytestmark = [pytest.mark.live]


def test_each_sweep_reaches_every_viewer_and_costs_no_engine_call(
    cast, make_container, local_host, monkeypatch
):
    c = make_container(cast.owner, cast.alpha)
    other = make_container(cast.owner, cast.alpha)
    # Other suites' containers on this engine come and go (each new one is inspected
    # once): the mirror of this test holds only its own two.
    Container.objects.exclude(pk__in=[c.pk, other.pk]).update(state="exited")
    collector.sweep_host(local_host, store=False)  # pids found (inspect) before counting
    calls = []
    real = engine_module.client_for
    monkeypatch.setattr(
        engine_module, "client_for", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    viewers = [headers_for(cast.users[w]) for w in ("viewer", "owner", "admin")] * 2

    async def run():
        sockets = [open_stats_socket(c, h) for h in viewers]
        for comm in sockets:
            assert (await comm.connect(timeout=5))[0]
        results = []
        for _ in range(2):
            time.sleep(0.3)
            result = await database_sync_to_async(collector.sweep_host)(local_host)
            results.append(result)
        got = [await receive_points(comm, 2) for comm in sockets]
        for comm in sockets:
            await comm.disconnect()
        return results, got

    results, got = async_to_sync(run)()
    expected = [r.at.timestamp() for r in results]
    for points in got:
        assert [p["t"] for p in points] == expected
        assert points[1]["cpu_percent"] is not None and points[1]["mem_bytes"] > 0
        assert set(points[1]) >= {"cpu_percent", "mem_bytes", "net_rx_bps", "pids"}
    # Six viewers, two sweeps: the engine was not asked anything.
    assert calls == []
    assert other.pk in results[0].figures  # the other container went by, not to them


def test_a_viewer_removed_from_the_team_is_cut_off(cast, make_container, local_host, settings):
    settings.ACCESS_RECHECK_SECONDS = 60  # the push, not the timer
    c = make_container(cast.owner, cast.alpha)
    headers = headers_for(cast.viewer)

    def demote():
        from dashboard import services
        from dashboard.audit import Actor

        services.remove_membership(
            Actor.system(), Membership.objects.get(user=cast.viewer, team=cast.alpha)
        )

    async def run():
        comm = open_stats_socket(c, headers)
        assert (await comm.connect(timeout=5))[0]
        await database_sync_to_async(collector.sweep_host)(local_host)
        await receive_points(comm, 1)
        await database_sync_to_async(demote)()
        out = await comm.receive_output(timeout=5)
        return out

    out = async_to_sync(run)()
    assert out["type"] == "websocket.close" and out["code"] == 4403
