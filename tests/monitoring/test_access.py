"""Who may see a container's figures: the stats page, its JSON, the socket, /metrics.

The page and the JSON read only the database, so their matrix runs on mirror rows
with stored samples; the socket and /metrics get figures from a real sweep.
"""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone

from containers.models import Container
from dashboard.models import AuditEntry
from monitoring.models import Collection, HostSample, Sample
from tests.logs.support import headers_for
from tests.monitoring.support import open_stats_socket

MEMBERS = ["owner", "operator", "viewer", "teamadmin", "admin", "dashadmin"]


@pytest.fixture
def stored(cast, dashadmin, local_host):
    """A container of alpha with an hour of samples, and one of beta."""
    now = timezone.now()
    rows = []
    containers = {}
    for team, name in ((cast.alpha, "alpha-web"), (cast.beta, "beta-secret")):
        c = Container.objects.create(
            host=local_host, docker_id=name.ljust(64, "0"), name=name, team=team, state="running"
        )
        containers[team.name] = c
        rows += [
            Sample(
                container=c,
                host=local_host,
                at=now - timedelta(seconds=10 * i),
                cpu_percent=float(i),
                mem_bytes=1000 + i,
            )
            for i in range(30)
        ]
    Sample.objects.bulk_create(rows)
    HostSample.objects.create(host=local_host, at=now, cpu_percent=12.5, ncpu=2)
    Collection.objects.create(host=local_host, method="cgroup", last_sweep_at=now)
    return containers


def page(c, query=""):
    return reverse("monitoring:container_stats", args=[c.pk]) + query


def test_anonymous_is_sent_to_login(client, stored):
    response = client.get(page(stored["alpha"], "?format=json"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("who", MEMBERS)
def test_team_members_and_admins_see_the_page_and_series(login, cast, stored, who):
    c = stored["alpha"]
    response = login(cast.users[who]).get(page(c))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-ws-url="/ws/containers/{c.pk}/stats/"' in html
    assert "vendor/uPlot-1.6.32.min.js" in html
    series = login(cast.users[who]).get(page(c, "?range=1h&format=json")).json()
    assert len(series["t"]) == 30 and series["t"] == sorted(series["t"])
    assert series["cpu_percent"][-1] == 0.0 and series["mem_bytes"][0] == 1029
    detail = login(cast.users[who]).get(reverse("containers:detail", args=[c.pk]))
    assert page(c) in detail.content.decode()


def test_outsider_gets_404_for_page_and_series(login, cast, stored):
    c = stored["alpha"]
    assert login(cast.outsider).get(page(c)).status_code == 404
    response = login(cast.outsider).get(page(c, "?range=24h&format=json"))
    assert response.status_code == 404
    assert "alpha-web" not in response.content.decode()


@pytest.mark.parametrize("bad", ["2h", "", "1h%00", "x" * 300])
def test_a_bad_range_is_a_clear_400_for_json_and_the_default_on_the_page(login, cast, stored, bad):
    c = stored["alpha"]
    response = login(cast.viewer).get(page(c), {"range": bad, "format": "json"})
    assert response.status_code == 400 and "range must be one of" in response.json()["error"]
    assert login(cast.viewer).get(page(c), {"range": bad}).status_code == 200


def test_host_page_top_lists_show_only_containers_the_viewer_may_see(login, cast, stored):
    host = stored["alpha"].host
    html = login(cast.viewer).get(reverse("host_detail", args=[host.pk])).content.decode()
    assert "Top by CPU" in html and "alpha-web" in html and "beta-secret" not in html
    assert "cgroup files (local)" in html
    html = login(cast.admin).get(reverse("host_detail", args=[host.pk])).content.decode()
    assert "alpha-web" in html and "beta-secret" in html


def test_host_series_follow_host_visibility(login, cast, stored, local_host):
    url = reverse("monitoring:host_stats", args=[local_host.pk])
    series = login(cast.viewer).get(url, {"range": "24h"}).json()
    assert series["cpu_percent"] == [12.5]
    local_host.all_teams = False
    local_host.save()
    assert login(cast.viewer).get(url).status_code == 404


# --- /metrics ---------------------------------------------------------------------


def test_metrics_for_the_token(client, settings, stored):
    settings.METRICS_TOKEN = "s3cret-token"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "# TYPE dockyard_container_cpu_percent gauge" in text
    assert 'dockyard_container_cpu_percent{container="alpha-web",host="local",team="alpha"}' in text
    assert 'dockyard_host_cpu_percent{host="local"} 12.5' in text


@pytest.mark.parametrize(
    "configured,sent",
    [
        ("s3cret-token", "Bearer wrong"),
        ("s3cret-token", "Bearer "),
        ("", "Bearer "),
        ("", "Bearer x"),
    ],
)
def test_metrics_refuse_a_wrong_or_unconfigured_token(client, settings, stored, configured, sent):
    settings.METRICS_TOKEN = configured
    response = client.get("/metrics", HTTP_AUTHORIZATION=sent)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_metrics_anonymous_is_401(client, stored):
    assert client.get("/metrics").status_code == 401


@pytest.mark.parametrize("who", ["owner", "operator", "viewer", "teamadmin", "outsider"])
def test_metrics_session_of_a_non_admin_is_403(login, cast, stored, who):
    assert login(cast.users[who]).get("/metrics").status_code == 403


@pytest.mark.parametrize("who", ["admin", "dashadmin"])
def test_metrics_session_of_a_dashboard_admin(login, cast, stored, who):
    response = login(cast.users[who]).get("/metrics")
    assert response.status_code == 200 and b"beta-secret" in response.content


# --- the socket -----------------------------------------------------------------


def connect(container, headers):
    async def attempt():
        comm = open_stats_socket(container, headers)
        connected, code = await comm.connect(timeout=5)
        await comm.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def test_socket_anonymous_refused(stored):
    assert connect(stored["alpha"], headers_for(None)) == (False, 4401)


def test_socket_outsider_refused_as_not_found(cast, stored):
    assert connect(stored["alpha"], headers_for(cast.outsider)) == (False, 4404)


@pytest.mark.parametrize("who", MEMBERS)
def test_socket_members_and_admins_accepted(cast, stored, who):
    assert connect(stored["alpha"], headers_for(cast.users[who]))[0] is True


def test_socket_foreign_origin_refused(cast, stored):
    origin = (b"origin", b"http://evil.example.com")
    assert connect(stored["alpha"], headers_for(cast.viewer, origin=origin))[0] is False


# --- how a host is read (dashboard admins) ----------------------------------------


def mode_url(host):
    return reverse("monitoring:host_collection_mode", args=[host.pk])


@pytest.mark.parametrize("who", ["owner", "operator", "viewer", "teamadmin", "outsider"])
def test_only_dashboard_admins_set_the_collection_mode(login, cast, stored, local_host, who):
    response = login(cast.users[who]).post(mode_url(local_host), {"mode": "stats-api"})
    assert response.status_code == 403  # the host is open to all teams: seen, not managed
    assert Collection.objects.get(host=local_host).mode == "auto"
    assert not AuditEntry.objects.filter(action="host.metrics_mode").exists()
    page = login(cast.users[who]).get(reverse("host_detail", args=[local_host.pk]))
    assert mode_url(local_host) not in page.content.decode()


def test_a_hidden_host_is_404_for_the_collection_mode(login, cast, stored, local_host):
    local_host.all_teams = False
    local_host.save()
    assert login(cast.viewer).post(mode_url(local_host), {"mode": "auto"}).status_code == 404


@pytest.mark.parametrize("who", ["admin", "dashadmin"])
def test_a_dashboard_admin_sets_the_mode_audited_and_it_is_decided_again(
    login, cast, stored, local_host, who
):
    page = login(cast.users[who]).get(reverse("host_detail", args=[local_host.pk]))
    assert mode_url(local_host) in page.content.decode()
    response = login(cast.users[who]).post(mode_url(local_host), {"mode": "stats-api"})
    assert response.status_code == 302
    collection = Collection.objects.get(host=local_host)
    assert collection.mode == "stats-api" and collection.method == ""
    entry = AuditEntry.objects.get(action="host.metrics_mode")
    assert entry.params == {"mode": "stats-api", "before": "auto"}
    assert entry.username == cast.users[who].username


@pytest.mark.parametrize("bad", ["", "cgroup", "<b>x</b>", "x" * 500])
def test_a_bad_mode_is_a_clear_400_and_changes_nothing(login, cast, stored, local_host, bad):
    response = login(cast.admin).post(mode_url(local_host), {"mode": bad})
    assert response.status_code == 400 and b"choose auto, stats-api" in response.content
    assert Collection.objects.get(host=local_host).mode == "auto"
    assert not AuditEntry.objects.filter(action="host.metrics_mode").exists()
