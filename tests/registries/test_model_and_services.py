"""The Registry model and the services other apps use: credentials, grants, matching."""

import pytest
import requests
from django.db import connection

from dashboard.audit import Actor
from dashboard.models import AuditEntry, Membership, Role, Team
from registries import services
from registries.models import Registry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("registry.example.com", "https://registry.example.com"),
        ("Registry.Example.com:5000/", "https://registry.example.com:5000"),
        ("http://r.example.com:80", "http://r.example.com:80"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("https://127.0.0.1:5000", "https://127.0.0.1:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("docker.io", "https://docker.io"),
    ],
)
def test_normalize_url_accepts_hosts_and_urls(given, normalized):
    assert services.normalize_url(given) == normalized


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "ftp://r.example.com",
        "https://",
        "https://user:pw@r.example.com",
        "https://r.example.com/v2/",
        "r.example.com/some/path",
        "https://r.example.com?x=1",
        "r.example.com:99999",
        "r.example.com:port",
        "bad host.example.com",
        "https://-bad-.example.com",
        "https://<script>.example.com",
        "https://r.exam\x00ple.com",
    ],
)
def test_normalize_url_refuses_malformed_addresses(bad):
    with pytest.raises(services.RegistryInputError):
        services.normalize_url(bad)


@pytest.mark.parametrize(
    ("reference", "host"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("user/app", "docker.io"),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("Registry.Example.com/team/app@sha256:" + "a" * 64, "registry.example.com"),
        ("registry.example.com", "docker.io"),  # one component: an image name, not a host
    ],
)
def test_reference_host_reads_the_registry_part(reference, host):
    assert services.reference_host(reference) == host


def test_match_registry_by_host_and_port():
    a = Registry(name="a", url="https://registry.example.com")
    b = Registry(name="b", url="http://127.0.0.1:5000")
    hub = Registry(name="hub", url="https://docker.io")
    regs = [a, b, hub]
    assert services.match_registry("registry.example.com/x/y:1", regs) is a
    assert services.match_registry("127.0.0.1:5000/app", regs) is b
    assert services.match_registry("127.0.0.1:5001/app", regs) is None
    assert services.match_registry("busybox:latest", regs) is hub
    assert services.match_registry("registry.example.com:443/x", [a]) is None


def test_password_is_stored_encrypted_and_given_to_jobs_as_auth_config(cast, registry_server):
    reg = services.save_registry(
        Actor.system(),
        name="r1",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
    )
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM registries_registry")
        rows = cur.fetchall()
    assert registry_server.password not in repr(rows)
    assert Registry.objects.get(pk=reg.pk).password == registry_server.password
    auth = services.auth_config_for(reg)
    assert auth == {
        "username": registry_server.username,
        "password": registry_server.password,
        "serveraddress": registry_server.url,
    }
    # The credentials work against the real registry; without them it says 401.
    base = registry_server.http_url
    assert requests.get(f"{base}/v2/", timeout=5).status_code == 401
    creds = (auth["username"], auth["password"])
    assert requests.get(f"{base}/v2/", auth=creds, timeout=5).status_code == 200
    entry = AuditEntry.objects.get(action="registry.create")
    assert registry_server.password not in repr(entry.params) + entry.message


def test_registries_for_follows_grants_and_roles(cast, dashadmin):
    granted = Registry.objects.create(name="g", url="https://g.example.com")
    granted.teams.add(cast.alpha)
    Registry.objects.create(name="e", url="https://e.example.com", all_teams=True)
    other = Registry.objects.create(name="o", url="https://o.example.com")
    other.teams.add(cast.beta)

    def names(user, team, action="use"):
        return set(services.registries_for(user, team, action).values_list("name", flat=True))

    assert names(cast.owner, cast.alpha) == {"g", "e"}
    assert names(cast.teamadmin, cast.alpha) == {"g", "e"}
    assert names(cast.viewer, cast.alpha) == set()  # a viewer cannot pull
    assert names(cast.viewer, cast.alpha, "view") == {"g", "e"}
    assert names(cast.owner, cast.beta) == set()  # not their team
    assert names(cast.outsider, cast.beta) == {"e", "o"}
    assert names(cast.outsider, cast.alpha) == set()
    assert names(cast.admin, cast.alpha) == {"g", "e", "o"}
    assert names(dashadmin, cast.beta) == {"g", "e", "o"}


def test_a_viewer_role_elsewhere_does_not_grant_use_of_that_teams_registry(cast):
    # operator in alpha, viewer in gamma; the registry is gamma's only.
    gamma = Team.objects.create(name="gamma")
    Membership.objects.create(user=cast.owner, team=gamma, role=Role.VIEWER)
    reg = Registry.objects.create(name="gam", url="https://gam.example.com")
    reg.teams.add(gamma)
    qs = Registry.objects.filter(pk=reg.pk)
    from dashboard import access

    assert access.restrict(cast.owner, qs, "view").exists()
    assert not access.restrict(cast.owner, qs, "use").exists()
    assert not services.registries_for(cast.owner, cast.alpha).exists()
    assert not services.registries_for(cast.owner, gamma).exists()
