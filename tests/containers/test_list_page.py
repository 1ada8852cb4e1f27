"""The container list: paging, and the mirror freshness window that spares the engine."""

import pytest
from django.test import override_settings
from django.urls import reverse

from containers import views
from dashboard.models import Host

pytestmark = [pytest.mark.live]


def test_list_pages_through_containers_and_keeps_filters(cast, login, make_container, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    names = sorted(make_container(team=cast.alpha).name for _ in range(3))
    client = login(cast.viewer)

    first = client.get(reverse("containers:list"), {"q": "t-"})
    second = client.get(reverse("containers:list"), {"q": "t-", "page": 2})

    shown = [n for n in names if n in first.content.decode()]
    rest = [n for n in names if n in second.content.decode()]
    assert len(shown) == 2 and rest == sorted(set(names) - set(shown))
    assert "3 containers, showing 1–2" in first.content.decode()
    assert "?q=t-&page=2" in first.content.decode()  # the next link keeps the filter


def test_views_within_the_freshness_window_do_not_call_the_engine(cast, login, local_host):
    client = login(cast.admin)
    client.get(reverse("containers:list"))
    synced = Host.objects.get(pk=local_host.pk).last_synced
    assert synced is not None

    with override_settings(MIRROR_FRESH_SECONDS=60):
        for _ in range(5):
            assert client.get(reverse("containers:list")).status_code == 200
    assert Host.objects.get(pk=local_host.pk).last_synced == synced

    with override_settings(MIRROR_FRESH_SECONDS=0):
        client.get(reverse("containers:list"))
    assert Host.objects.get(pk=local_host.pk).last_synced > synced
