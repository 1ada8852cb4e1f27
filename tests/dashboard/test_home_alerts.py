"""The home page lists firing alerts, only those about what the user may see."""

import pytest
from django.utils import timezone

from alerts.models import Alert
from containers.models import Container
from dashboard.models import Host

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def firing(cast):
    host = Host.objects.create(name="h1", url="unix:///tmp/nope.sock", all_teams=True)
    box = Container.objects.create(
        host=host, docker_id="c" * 64, name="<b>web</b>", state="running", team=cast.alpha
    )
    return Alert.objects.create(
        rule_name="hot-cpu",
        rule_team=cast.alpha,
        container=box,
        container_name=box.name,
        host=host,
        host_name=host.name,
        condition="cpu_percent > 80",
        since=timezone.now(),
    )


@pytest.mark.parametrize(
    "who, shown", [("viewer", True), ("owner", True), ("admin", True), ("outsider", False)]
)
def test_home_shows_firing_alerts_the_user_may_see(client, cast, firing, who, shown):
    client.force_login(getattr(cast, who))
    html = client.get("/").content.decode()
    assert ("hot-cpu" in html) is shown
    assert "<b>web</b>" not in html  # names are escaped
    if not shown:
        assert "Nothing is firing." in html


def test_resolved_alerts_leave_the_home_page(client, cast, firing):
    Alert.objects.filter(pk=firing.pk).update(resolved_at=timezone.now())
    client.force_login(cast.owner)
    assert "Nothing is firing." in client.get("/").content.decode()
