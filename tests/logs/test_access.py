"""Who may read a container's log: the page and the socket, through the one gate."""

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.urls import reverse

from dashboard import services
from dashboard.audit import Actor
from dashboard.models import Membership
from tests.logs.support import connect, headers_for, open_socket, read_lines, shell

pytestmark = [pytest.mark.live]


@pytest.fixture
def container(cast, make_container):
    return make_container(cast.owner, cast.alpha, command=shell("echo hello"))


def url(c):
    return reverse("containers:logs:page", args=[c.pk])


def test_page_anonymous_is_sent_to_login(client, container):
    response = client.get(url(container))
    assert response.status_code == 302 and "login" in response["Location"]


def test_page_outsider_gets_404(login, cast, container):
    assert login(cast.outsider).get(url(container)).status_code == 404
    assert login(cast.outsider).get(url(container) + "?download=1").status_code == 404


@pytest.mark.parametrize("who", ["viewer", "operator", "admin"])
def test_page_viewer_and_up_see_it_and_detail_links_it(login, cast, container, who):
    page = login(cast.users[who]).get(url(container))
    assert page.status_code == 200
    assert f'ws-connect="/ws/containers/{container.pk}/logs/?' in page.content.decode()
    detail = login(cast.users[who]).get(reverse("containers:detail", args=[container.pk]))
    assert url(container) in detail.content.decode()


def test_socket_anonymous_refused_before_accept(container):
    assert connect(container, headers_for(None)) == (False, 4401)


def test_socket_outsider_refused_before_accept(cast, container):
    assert connect(container, headers_for(cast.outsider)) == (False, 4404)


def test_socket_viewer_allowed(cast, container):
    assert connect(container, headers_for(cast.viewer))[0] is True


@pytest.mark.parametrize("origin", [(b"origin", b"http://evil.example.com"), None])
def test_socket_foreign_or_missing_origin_refused(cast, container, origin):
    assert connect(container, headers_for(cast.viewer, origin=origin))[0] is False


def test_socket_bad_filter_refused(cast, container):
    async def attempt():
        comm = open_socket(container, headers, "re=1&q=%28unclosed")
        connected, code = await comm.connect(timeout=5)
        return connected, code

    headers = headers_for(cast.viewer)
    assert async_to_sync(attempt)() == (False, 4400)


@pytest.mark.parametrize("how", ["pushed", "timer"])
def test_viewer_removed_from_the_team_while_streaming_is_cut_off(
    cast, make_container, settings, how
):
    settings.ACCESS_RECHECK_SECONDS = 1 if how == "timer" else 60
    c = make_container(
        cast.owner, cast.alpha, command=shell("while true; do echo beat; sleep 0.2; done")
    )
    headers = headers_for(cast.viewer)
    membership = Membership.objects.get(user=cast.viewer, team=cast.alpha)

    def demote():
        if how == "pushed":
            services.remove_membership(Actor.system(), membership)
        else:
            Membership.objects.filter(pk=membership.pk).delete()

    async def run():
        comm = open_socket(c, headers, "tail=all&ts=0")
        assert (await comm.connect(timeout=5))[0]
        await read_lines(comm, lambda ls: len(ls) >= 3)
        await database_sync_to_async(demote)()
        started = time.monotonic()
        while time.monotonic() - started < 5:
            out = await comm.receive_output(timeout=5)
            if out["type"] == "websocket.close":
                return out.get("code"), time.monotonic() - started
        return None, None

    code, took = async_to_sync(run)()
    assert code == 4403 and took < 5
