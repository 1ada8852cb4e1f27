"""Host pages: add, probe, test connection, edit, delete; admins only; TLS key encrypted."""

import glob
import html
import re
import shutil

import pytest
from django.urls import reverse

from containers.models import Container
from dashboard.models import AuditEntry, Host

pytestmark = [pytest.mark.django_db]

SOCKET = "unix:///var/run/docker.sock"
NOPE = "unix:///tmp/nope.sock"
KEY_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-not-a-real-key\n"
    "-----END PRIVATE KEY-----"
)
CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU-not-real\n-----END CERTIFICATE-----"


def host_form(name, url, **extra):
    return {"name": name, "url": url, "tls_verify": "on", **extra}


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


@pytest.mark.live
def test_admin_adds_a_reachable_host_which_is_probed_and_audited(cast, login):
    client = login(cast.admin)
    assert client.get(reverse("host_new")).status_code == 200
    response = client.post(reverse("host_new"), host_form("engine-1", SOCKET), follow=True)
    host = Host.objects.get(name="engine-1")
    assert response.redirect_chain[-1][0] == reverse("host_detail", args=[host.pk])
    assert host.url == SOCKET
    assert host.state == Host.State.REACHABLE
    assert host.engine_version and host.api_version and host.last_checked
    assert host.last_error == ""
    assert any("saved and reachable" in m for m in messages_of(response))
    entry = AuditEntry.objects.get(action="host.create")
    assert (entry.username, entry.host_id, entry.host_name) == ("admin", host.pk, "engine-1")
    assert entry.params == {
        "url": SOCKET,
        "tls": False,
        "insecure": False,
        "all_teams": False,
        "teams": [],
    }
    assert entry.source_ip == "127.0.0.1"


@pytest.mark.live
def test_dashboard_admin_by_flag_adds_a_host_granted_to_a_team(cast, dashadmin, login):
    client = login(dashadmin)
    data = host_form("engine-2", SOCKET, teams=[cast.alpha.pk])
    response = client.post(reverse("host_new"), data)
    assert response.status_code == 302
    host = Host.objects.get(name="engine-2")
    assert not host.all_teams
    assert list(host.teams.values_list("name", flat=True)) == ["alpha"]
    entry = AuditEntry.objects.get(action="host.create")
    assert (entry.username, entry.params["teams"]) == ("dashadmin", ["alpha"])
    # Granted to alpha: alpha's members see it, beta's do not.
    assert "engine-2" in login(cast.viewer).get(reverse("host_list")).content.decode()
    client = login(cast.outsider)
    assert "engine-2" not in client.get(reverse("host_list")).content.decode()
    assert client.get(reverse("host_detail", args=[host.pk])).status_code == 404


@pytest.mark.parametrize(
    "url, error",
    [
        ("http://127.0.0.1:2375", "Use a unix:/// or tcp:// URL"),
        ("/var/run/docker.sock", "Use a unix:/// or tcp:// URL"),
        ("tcp://10.0.0.5", "A tcp:// URL needs host:port"),
        ("tcp://10.0.0.5:99999", "A tcp:// URL needs host:port"),
    ],
)
def test_bad_url_is_a_form_error_and_saves_nothing(cast, login, url, error):
    response = login(cast.admin).post(reverse("host_new"), host_form("bad", url))
    assert response.status_code == 200
    assert any(error in e for e in response.context["form"].errors["url"])
    assert not Host.objects.exists()
    assert not AuditEntry.objects.exists()


def test_tls_certificate_without_a_key_is_a_form_error(cast, login):
    response = login(cast.admin).post(
        reverse("host_new"), host_form("tls", "tcp://127.0.0.1:2376", tls_client_cert=CERT_PEM)
    )
    assert response.status_code == 200
    assert "tls_client_key" in response.context["form"].errors
    assert not Host.objects.exists()


def test_host_on_a_missing_socket_saves_but_shows_unreachable(cast, login):
    client = login(cast.admin)
    response = client.post(reverse("host_new"), host_form("nope", NOPE), follow=True)
    host = Host.objects.get(name="nope")
    assert host.state == Host.State.UNREACHABLE
    assert "socket not found" in host.last_error
    assert host.engine_version == ""
    [message] = messages_of(response)
    assert "saved, but it is unreachable" in message and "socket not found" in message
    page = response.content.decode()
    assert "This host is unreachable" in page
    assert AuditEntry.objects.filter(action="host.create", host_name="nope").exists()


@pytest.mark.live
def test_test_connection_returns_the_result_fragment(cast, login, local_host):
    response = login(cast.admin).post(
        reverse("host_test", args=[local_host.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body  # a fragment for htmx to swap in
    assert f'id="test-result-{local_host.pk}"' in body
    assert "Reachable" in body and "Unreachable" not in body
    local_host.refresh_from_db()
    assert local_host.state == Host.State.REACHABLE
    assert f"Docker {local_host.engine_version}" in body


def test_test_connection_of_unreachable_host_says_why(cast, login):
    host = Host.objects.create(name="gone", url=NOPE, state=Host.State.REACHABLE)
    response = login(cast.admin).post(reverse("host_test", args=[host.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "Unreachable" in body and "socket not found" in body
    host.refresh_from_db()
    assert host.state == Host.State.UNREACHABLE


def test_test_connection_is_post_only(cast, login):
    host = Host.objects.create(name="gone", url=NOPE)
    assert login(cast.admin).get(reverse("host_test", args=[host.pk])).status_code == 405


@pytest.mark.live
def test_admin_edits_a_host_and_it_is_probed_again(cast, login):
    host = Host.objects.create(name="edit-me", url=NOPE, state=Host.State.UNREACHABLE)
    client = login(cast.admin)
    form = client.get(reverse("host_edit", args=[host.pk])).context["form"]
    assert form.initial["url"] == NOPE
    response = client.post(reverse("host_edit", args=[host.pk]), host_form("edited", SOCKET))
    assert response.status_code == 302
    host.refresh_from_db()
    assert (host.name, host.url, host.state) == ("edited", SOCKET, Host.State.REACHABLE)
    assert Host.objects.count() == 1
    entry = AuditEntry.objects.get(action="host.update")
    assert (entry.host_name, entry.params["url"]) == ("edited", SOCKET)


def test_delete_removes_mirror_rows_but_keeps_audit_entries(cast, login):
    client = login(cast.admin)
    client.post(reverse("host_new"), host_form("doomed", NOPE))
    host = Host.objects.get(name="doomed")
    other = Host.objects.create(name="other", url=NOPE)
    for i, h in enumerate([host, host, other]):
        Container.objects.create(host=h, docker_id=f"{i:064x}", name=f"c{i}", team=cast.alpha)
    response = client.post(reverse("host_delete", args=[host.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("host_list")
    assert not Host.objects.filter(pk=host.pk).exists()
    assert not Container.objects.filter(host_id=host.pk).exists()
    assert Container.objects.filter(host=other).count() == 1
    entries = AuditEntry.objects.filter(host_name="doomed").order_by("id")
    assert [e.action for e in entries] == ["host.create", "host.remove"]
    assert all(e.host_id == host.pk for e in entries)  # the id is kept, not nulled
    assert any("(its containers keep running)" in m for m in messages_of(response))


def test_delete_is_post_only(cast, login):
    host = Host.objects.create(name="keep", url=NOPE)
    assert login(cast.admin).get(reverse("host_delete", args=[host.pk])).status_code == 405
    assert Host.objects.filter(pk=host.pk).exists()


NON_ADMINS = ["owner", "operator", "viewer", "teamadmin", "outsider"]


@pytest.mark.parametrize("who", NON_ADMINS)
def test_non_admin_cannot_add_edit_test_or_delete_hosts(cast, login, who):
    # Open to every team, so each of them sees it: still read-only (403, not 404).
    host = Host.objects.create(name="shared", url=NOPE, state=Host.State.REACHABLE, all_teams=True)
    client = login(getattr(cast, who))
    assert client.get(reverse("host_new")).status_code == 403
    assert client.post(reverse("host_new"), host_form("sneaky", SOCKET)).status_code == 403
    assert client.get(reverse("host_edit", args=[host.pk])).status_code == 403
    assert (
        client.post(reverse("host_edit", args=[host.pk]), host_form("x", SOCKET)).status_code == 403
    )
    assert client.post(reverse("host_test", args=[host.pk])).status_code == 403
    assert client.post(reverse("host_delete", args=[host.pk])).status_code == 403
    host.refresh_from_db()
    assert (host.name, host.url, host.state) == ("shared", NOPE, Host.State.REACHABLE)
    assert list(Host.objects.values_list("name", flat=True)) == ["shared"]
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("who", NON_ADMINS)
def test_non_admin_cannot_touch_a_host_not_granted_to_them(cast, login, who):
    host = Host.objects.create(name="hidden", url=NOPE, state=Host.State.REACHABLE)
    host.teams.add(cast.beta if who != "outsider" else cast.alpha)
    client = login(getattr(cast, who))
    assert client.get(reverse("host_detail", args=[host.pk])).status_code == 404
    assert client.post(reverse("host_test", args=[host.pk])).status_code == 404
    assert client.post(reverse("host_delete", args=[host.pk])).status_code == 404
    assert client.get(reverse("host_edit", args=[host.pk])).status_code in (403, 404)
    response = client.post(reverse("host_edit", args=[host.pk]), host_form("x", SOCKET))
    assert response.status_code in (403, 404)
    host.refresh_from_db()
    assert (host.name, host.url, host.state) == ("hidden", NOPE, Host.State.REACHABLE)
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("who", NON_ADMINS)
def test_non_admin_sees_hosts_read_only(cast, login, who):
    host = Host.objects.create(
        name="shared", url=NOPE, state=Host.State.UNREACHABLE, all_teams=True
    )
    client = login(getattr(cast, who))
    listing = client.get(reverse("host_list")).content.decode()
    assert "shared" in listing
    assert reverse("host_new") not in listing
    assert reverse("host_test", args=[host.pk]) not in listing
    detail = client.get(reverse("host_detail", args=[host.pk]))
    assert detail.status_code == 200
    page = detail.content.decode()
    for name in ("host_edit", "host_test", "host_delete"):
        assert reverse(name, args=[host.pk]) not in page


def test_admin_sees_the_management_links(cast, login):
    host = Host.objects.create(name="shared", url=NOPE)
    client = login(cast.admin)
    assert reverse("host_new") in client.get(reverse("host_list")).content.decode()
    page = client.get(reverse("host_detail", args=[host.pk])).content.decode()
    for name in ("host_edit", "host_test", "host_delete"):
        assert reverse(name, args=[host.pk]) in page


def test_user_in_no_team_sees_no_host(login, django_user_model):
    host = Host.objects.create(name="shared", url=NOPE, all_teams=True)
    client = login(django_user_model.objects.create_user("loner", password="x"))
    assert "shared" not in client.get(reverse("host_list")).content.decode()
    assert client.get(reverse("host_detail", args=[host.pk])).status_code == 404


@pytest.fixture
def tls_dirs():
    """Remove the private TLS folders the engine module writes for a test host."""
    before = set(glob.glob("/tmp/dockyard-tls-*"))
    yield
    for folder in set(glob.glob("/tmp/dockyard-tls-*")) - before:
        shutil.rmtree(folder, ignore_errors=True)


def test_tls_client_key_is_stored_encrypted(cast, login, tls_dirs):
    client = login(cast.admin)
    data = host_form(
        "tls-host", "tcp://127.0.0.1:1", tls_client_cert=CERT_PEM, tls_client_key=KEY_PEM
    )
    assert client.post(reverse("host_new"), data).status_code == 302
    [raw] = Host.objects.filter(name="tls-host").values_list("tls_client_key_encrypted", flat=True)
    assert raw and "BEGIN" not in raw and "not-a-real-key" not in raw
    host = Host.objects.get(name="tls-host")
    assert host.tls_client_key == KEY_PEM
    assert host.uses_tls
    assert host.state == Host.State.UNREACHABLE  # nothing listens on port 1

    # Editing without a key keeps the stored one.
    data.pop("tls_client_key")
    assert client.post(reverse("host_edit", args=[host.pk]), data).status_code == 302
    host.refresh_from_db()
    assert host.tls_client_key_encrypted == raw
    assert host.tls_client_key == KEY_PEM
    # Nor does the audit entry carry the key.
    assert "BEGIN" not in str(list(AuditEntry.objects.values_list("params", "message")))


def test_key_text_that_is_not_pem_is_refused(cast, login):
    data = host_form("tls", "tcp://127.0.0.1:1", tls_client_cert=CERT_PEM, tls_client_key="hunter2")
    response = login(cast.admin).post(reverse("host_new"), data)
    assert response.status_code == 200
    assert "tls_client_key" in response.context["form"].errors
    assert not Host.objects.exists()


# ---------------------------------------------------------------- TLS and insecure in the form

PLAIN = "tcp://127.0.0.1:1"


def form_errors(response):
    assert response.status_code == 200, "the form was accepted"
    return response.context["form"].errors


def test_tcp_without_tls_needs_the_insecure_box_which_says_what_it_means(cast, login):
    client = login(cast.admin)
    errors = form_errors(client.post(reverse("host_new"), host_form("plain", PLAIN)))
    [error] = errors["insecure"]
    assert error.startswith(
        "A tcp:// engine without TLS lets anyone who can reach its port control it "
        "(root on that machine)."
    )
    assert "tick Insecure" in error
    assert not Host.objects.exists()

    response = client.post(reverse("host_new"), host_form("plain", PLAIN, insecure="on"))
    assert response.status_code == 302
    host = Host.objects.get(name="plain")
    assert (host.insecure, host.uses_tls) == (True, False)


def test_tcp_with_a_ca_but_no_client_certificate_needs_the_insecure_box(cast, login):
    data = host_form("half", PLAIN, tls_ca_cert=CERT_PEM)
    [error] = form_errors(login(cast.admin).post(reverse("host_new"), data))["insecure"]
    assert error.startswith("Without a client certificate the dashboard can only reach an engine")
    assert not Host.objects.exists()


def test_unverified_engine_certificate_needs_the_insecure_box(cast, login, tls_dirs):
    client = login(cast.admin)
    data = host_form("noverify", PLAIN, tls_client_cert=CERT_PEM, tls_client_key=KEY_PEM)
    data.pop("tls_verify")
    [error] = form_errors(client.post(reverse("host_new"), data))["tls_verify"]
    assert error.startswith(
        "Without verifying the engine's certificate anyone on the network path can pose"
    )
    assert not Host.objects.exists()

    assert client.post(reverse("host_new"), {**data, "insecure": "on"}).status_code == 302
    host = Host.objects.get(name="noverify")
    assert (host.tls_verify, host.insecure) == (False, True)


def test_full_tls_needs_no_insecure_box(cast, login, tls_dirs):
    data = host_form("mtls", PLAIN, tls_client_cert=CERT_PEM, tls_client_key=KEY_PEM)
    assert login(cast.admin).post(reverse("host_new"), data).status_code == 302
    assert Host.objects.get(name="mtls").insecure is False


def test_client_key_without_its_certificate_is_a_form_error(cast, login):
    data = host_form("keyonly", PLAIN, tls_client_key=KEY_PEM, insecure="on")
    errors = form_errors(login(cast.admin).post(reverse("host_new"), data))
    assert errors["tls_client_cert"] == ["A client key needs its certificate."]


def test_unix_socket_ignores_and_empties_the_tls_fields(cast, login, tls_dirs):
    client = login(cast.admin)
    data = host_form("tls", PLAIN, tls_client_cert=CERT_PEM, tls_client_key=KEY_PEM)
    assert client.post(reverse("host_new"), data).status_code == 302
    host = Host.objects.get(name="tls")
    assert host.tls_client_key_encrypted

    # Moved to a socket (with TLS text still in the form, verification off): no TLS kept.
    data = host_form("tls", NOPE, tls_ca_cert=CERT_PEM, tls_client_cert=CERT_PEM)
    data.pop("tls_verify")
    assert client.post(reverse("host_edit", args=[host.pk]), data).status_code == 302
    host.refresh_from_db()
    assert (host.url, host.tls_ca_cert, host.tls_client_cert) == (NOPE, "", "")
    assert (host.tls_client_key_encrypted, host.tls_verify, host.uses_tls) == ("", True, False)


# ---------------------------------------------------------------- TLS and insecure on the pages

WARNING = "tcp:// without TLS: anyone who can reach this port controls the engine"


def text_of(response):
    """The page's words, one space apart (tags count as spaces)."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", response.content.decode())).split())


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_insecure_host_is_shown_in_red_with_a_plain_warning(cast, login, who):
    host = Host.objects.create(name="naked", url=PLAIN, insecure=True, all_teams=True)
    Host.objects.create(name="safe", url=NOPE, all_teams=True)
    client = login(getattr(cast, who))

    listing = client.get(reverse("host_list"))
    assert text_of(listing).count(WARNING) == 1
    assert 'class="badge badge-insecure"' in listing.content.decode()

    detail = client.get(reverse("host_detail", args=[host.pk]))
    page = detail.content.decode()
    assert 'class="banner-error insecure-banner"' in page
    assert f"insecure {WARNING}." in text_of(detail)
    safe = Host.objects.get(name="safe")
    assert WARNING not in text_of(client.get(reverse("host_detail", args=[safe.pk])))


def test_detail_page_names_the_teams_a_host_is_open_to(cast, login):
    granted = Host.objects.create(name="granted", url=NOPE)
    granted.teams.set([cast.alpha, cast.beta])
    everyone = Host.objects.create(name="everyone", url=NOPE, all_teams=True)
    nobody = Host.objects.create(name="nobody", url=NOPE)
    admin = login(cast.admin)
    assert "Open to alpha, beta Engine" in text_of(
        admin.get(reverse("host_detail", args=[granted.pk]))
    )
    assert "Open to all teams" in text_of(admin.get(reverse("host_detail", args=[everyone.pk])))
    assert "Open to no team (dashboard admins only)" in text_of(
        admin.get(reverse("host_detail", args=[nobody.pk]))
    )
    # A member sees the host's grant to their own team, not the names of other teams.
    page = text_of(login(cast.viewer).get(reverse("host_detail", args=[granted.pk])))
    assert "Open to alpha (yours)" in page
    assert "beta" not in page


def test_edit_page_explains_the_tls_fields_and_carries_grants_and_insecure(cast, login):
    host = Host.objects.create(name="edit-me", url=PLAIN, insecure=True)
    host.teams.set([cast.beta])
    client = login(cast.admin)
    response = client.get(reverse("host_edit", args=[host.pk]))
    page = text_of(response)
    assert "--tlsverify --tlscacert ca.pem" in page
    assert "the dashboard checks the engine's certificate against it" in page
    assert "this machine's trusted CAs are used" in page
    body = response.content.decode()
    for name in ("all_teams", "teams", "insecure", "tls_verify"):
        assert f'name="{name}"' in body
    # Posting the page back as shown keeps the grants and the insecure flag.
    form = response.context["form"]
    data = {k: v for k, v in form.initial.items() if k in form.fields and v not in (None, False)}
    data["teams"] = [t.pk for t in form.initial["teams"]]
    data = {k: ("on" if v is True else v) for k, v in data.items()}
    assert client.post(reverse("host_edit", args=[host.pk]), data).status_code == 302
    host.refresh_from_db()
    assert (host.insecure, list(host.teams.all())) == (True, [cast.beta])
