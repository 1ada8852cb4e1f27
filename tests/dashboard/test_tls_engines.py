"""Engines over TLS: a dockerd that demands mutual TLS, in its own network namespace.

The dashboard manages it over TLS (probe, sync, an action in the worker); each way TLS
can fail ends in one sentence an operator can act on; no CA means the system's trust
store, never "no verification"; tcp:// without TLS is refused unless the host is
marked insecure; REQUESTS_CA_BUNDLE in the environment changes nothing.
"""

import datetime
import html
import socket
import ssl
import threading

import docker
import pytest
import requests
from django.conf import settings
from django.urls import reverse
from django.utils.html import strip_tags

from containers.models import Container
from containers.services import sync_host
from containers.services.actions import request_action
from dashboard import engine as engine_module
from dashboard.audit import Actor
from dashboard.engine import forget_client
from dashboard.models import Host, Job
from dashboard.services import check_host
from tests.support.engines import CertificateAuthority, TLSEngine
from tests.support.helpers import TEST_LABEL, unique, wait_job

pytestmark = [pytest.mark.live, pytest.mark.two_hosts]

LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="session")
def tls_engine():
    """The mutual-TLS dockerd (no image until a test asks); gone after the session,
    failed tests or not. Named after the run id, like the second engine."""
    engine = TLSEngine(
        name=f"dockyard-mtls-{settings.RUN_ID}", base=f"/tmp/dockyard-mtls-{settings.RUN_ID}"
    )
    try:
        engine.start(image=False)
    except Exception:
        engine.destroy()
        raise
    yield engine
    engine.destroy()


@pytest.fixture(scope="session")
def other_ca():
    """A CA that has nothing to do with the engine."""
    return CertificateAuthority("Unrelated test CA")


@pytest.fixture
def make_host(db, tls_engine):
    """Hosts on the TLS engine: full mutual TLS unless overridden (key= sets the key)."""
    made = []

    def make(name="tls", key=None, **fields):
        values = {
            "url": tls_engine.url,
            "tls_ca_cert": tls_engine.ca_pem,
            "tls_client_cert": tls_engine.client_cert_pem,
            "all_teams": True,
            **fields,
        }
        host = Host(name=name, **values)
        host.tls_client_key = tls_engine.client_key_pem if key is None else key
        host.save()
        made.append(host)
        return host

    yield make
    for host in made:
        forget_client(host)  # closes its client and removes its private TLS files


def failure(host):
    """check_host's message for a host that must not be reachable."""
    ok, message = check_host(host)
    assert not ok, f"{host.name} connected, but must not: {message}"
    host.refresh_from_db()
    assert host.state == Host.State.UNREACHABLE
    assert host.last_error == message
    return message


def page_text(response):
    return " ".join(html.unescape(strip_tags(response.content.decode())).split())


# ---------------------------------------------------------------- it works over TLS


def test_admin_adds_the_tls_engine_through_the_form_and_it_is_probed_over_tls(
    cast, login, tls_engine
):
    data = {
        "name": "tls-form",
        "url": tls_engine.url,
        "all_teams": "on",
        "tls_ca_cert": tls_engine.ca_pem,
        "tls_client_cert": tls_engine.client_cert_pem,
        "tls_client_key": tls_engine.client_key_pem,
        "tls_verify": "on",
    }
    response = login(cast.admin).post(reverse("host_new"), data, follow=True)

    host = Host.objects.get(name="tls-form")
    try:
        assert [str(m) for m in response.context["messages"]] == [
            "Host tls-form saved and reachable."
        ]
        assert (host.state, host.last_error, host.insecure) == ("reachable", "", False)
        assert (
            host.engine_version
            == tls_engine.docker("version", "-f", "{{.Server.Version}}").stdout.strip()
        )
        page = page_text(response)
        assert "the engine's certificate is checked against the CA given" in page
        assert "insecure" not in page.lower()
    finally:
        forget_client(host)


def test_sync_lists_a_container_made_on_the_tls_engine_and_an_action_reaches_it(
    cast, tls_engine, make_host, celery_worker
):
    tls_engine.load_image()  # the only test that needs a container there
    name = unique("overtls")
    tls_engine.docker(
        "run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1", tls_engine.image, *LOOP
    )
    host = make_host()
    try:
        assert check_host(host)[0]
        assert sync_host(host) >= 1
        row = Container.objects.get(host=host, name=name)
        assert row.state == "running"

        job = wait_job(request_action(Actor(cast.admin), row, "stop"))

        assert job.status == Job.Status.SUCCEEDED, job.message
        state = tls_engine.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip()
        assert state == "exited"
        row.refresh_from_db()
        assert row.state == "exited"
    finally:
        tls_engine.docker("rm", "-f", name, check=False)


def test_requests_ca_bundle_in_the_environment_does_not_replace_the_hosts_ca(
    tls_engine, make_host, other_ca, tmp_path, monkeypatch
):
    bundle = tmp_path / "other-bundle.pem"
    bundle.write_text(other_ca.cert_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(bundle))
    # The environment does matter to requests: a client left as docker-py makes it fails.
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.write_text(tls_engine.ca_pem)
    cert.write_text(tls_engine.client_cert_pem)
    key.write_text(tls_engine.client_key_pem)
    tls = docker.tls.TLSConfig(client_cert=(str(cert), str(key)), ca_cert=str(ca), verify=True)
    plain = docker.DockerClient(base_url=tls_engine.url, version="1.41", timeout=5, tls=tls)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        plain.version()
    plain.close()

    ok, message = check_host(make_host())

    assert ok, message


# ---------------------------------------------------------------- TLS refused: one clear sentence


def test_wrong_ca_says_the_engine_certificate_is_not_signed_by_it(make_host, other_ca, tls_engine):
    host = make_host(tls_ca_cert=other_ca.cert_pem)
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the engine's certificate is not signed by the CA you "
        "gave; paste the CA certificate that signed the engine's certificate."
    )


def test_no_ca_means_the_system_trust_store_which_does_not_trust_a_private_ca(
    make_host, tls_engine
):
    host = make_host(tls_ca_cert="")
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the engine's certificate is not trusted: no CA was "
        "given, so it was checked against this machine's trusted CAs, and none of them "
        "signed it; paste the CA certificate that signed it."
    )


def test_missing_client_certificate_is_refused_by_us_or_by_the_engine(make_host, tls_engine):
    # Not insecure: the dashboard does not even try (an engine that would let it in
    # without a client certificate lets anyone in).
    host = make_host(tls_client_cert="", key="")
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): not connected, because an engine that lets the "
        "dashboard in without a client certificate lets anyone who can reach this port in; "
        "add a client certificate with its key, or mark the host insecure to accept that."
    )
    assert not [k for k in engine_module._clients if k[0] == host.pk]

    # Marked insecure, it tries: this engine demands one.
    host.insecure = True
    host.save()
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the engine demands a client certificate; add a "
        "client certificate and key signed by a CA the engine trusts."
    )


def test_expired_client_certificate_says_when_it_expired(make_host, tls_engine):
    now = datetime.datetime.now(datetime.UTC)
    ended = (now - datetime.timedelta(days=1)).replace(second=0, microsecond=0)
    cert, key = tls_engine.ca.issue(
        "dockyard-old", not_before=now - datetime.timedelta(days=30), not_after=ended
    )
    host = make_host(tls_client_cert=cert, key=key)
    day = ended.strftime("%Y-%m-%d %H:%M UTC")
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the client certificate expired on {day}; issue a "
        "new one and paste it with its key."
    )


def test_client_certificate_from_another_ca_is_refused_by_the_engine(
    make_host, other_ca, tls_engine
):
    cert, key = other_ca.issue("stranger")
    host = make_host(tls_client_cert=cert, key=key)
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the engine refused the client certificate; it must "
        "be signed by a CA the engine trusts (its --tlscacert)."
    )


@pytest.fixture
def loopback_tls_server():
    """A TLS server on 127.0.0.1 presenting a given certificate: handshakes, then hangs up.

    For what the real engine cannot show without being restarted: a certificate made out
    for another address, an expired one.
    """
    servers = []

    def serve(cert_pem, key_pem, tmp):
        (tmp / "cert.pem").write_text(cert_pem + key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "cert.pem")
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                conn.settimeout(5)
                try:
                    context.wrap_socket(conn, server_side=True).close()
                except (ssl.SSLError, OSError):
                    conn.close()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        servers.append((stop, thread, listener))
        return listener.getsockname()[1]

    yield serve
    for stop, thread, listener in servers:
        stop.set()
        thread.join(5)
        listener.close()


def test_certificate_made_out_for_another_address_names_the_address(
    make_host, loopback_tls_server, tmp_path
):
    ca = CertificateAuthority("Loopback test CA")
    port = loopback_tls_server(*ca.issue("elsewhere", ip="10.213.77.254", usage="server"), tmp_path)
    client_cert, client_key = ca.issue("dockyard")
    host = make_host(
        url=f"tcp://127.0.0.1:{port}",
        tls_ca_cert=ca.cert_pem,
        tls_client_cert=client_cert,
        key=client_key,
    )
    assert failure(host) == (
        f"Host tls (tcp://127.0.0.1:{port}): the engine's certificate is not made out for "
        "127.0.0.1; connect by a name or address its certificate lists (subjectAltName), "
        "or reissue it for this one."
    )


def test_expired_engine_certificate_says_it_is_the_engines(
    make_host, loopback_tls_server, tmp_path
):
    ca = CertificateAuthority("Loopback test CA")
    now = datetime.datetime.now(datetime.UTC)
    server = ca.issue(
        "old-engine",
        ip="127.0.0.1",
        usage="server",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    port = loopback_tls_server(*server, tmp_path)
    client_cert, client_key = ca.issue("dockyard")
    host = make_host(
        url=f"tcp://127.0.0.1:{port}",
        tls_ca_cert=ca.cert_pem,
        tls_client_cert=client_cert,
        key=client_key,
    )
    assert failure(host) == (
        f"Host tls (tcp://127.0.0.1:{port}): the engine's certificate has expired (or this "
        "machine's clock is wrong); renew the certificate on the engine."
    )


# ---------------------------------------------------------------- tcp:// without TLS


def test_plain_tcp_is_refused_by_the_engine_layer_unless_the_host_is_insecure(
    make_host, tls_engine
):
    host = make_host(tls_ca_cert="", tls_client_cert="", key="")
    assert not host.uses_tls
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): not connected, because tcp:// without TLS lets anyone "
        "who can reach this port control the engine; add the engine's CA and a client "
        "certificate with its key, or mark the host insecure to accept that."
    )
    assert not [k for k in engine_module._clients if k[0] == host.pk]

    # Insecure: it really speaks plain HTTP, and this engine wants TLS.
    host.insecure = True
    host.save()
    assert failure(host) == (
        f"Host tls ({tls_engine.url}): the engine speaks TLS on this port; give the host "
        "the engine's CA and a client certificate with its key."
    )


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_unverified_engine_certificate_only_for_an_insecure_host(make_host, other_ca, tls_engine):
    # The wrong CA, but verification off: refused, then allowed once marked insecure.
    host = make_host(tls_ca_cert=other_ca.cert_pem, tls_verify=False)
    assert failure(host).startswith(
        f"Host tls ({tls_engine.url}): not connected, because without verifying the "
        "engine's certificate anyone on the network path could pose as the engine; "
    )
    host.insecure = True
    host.save()
    ok, message = check_host(host)
    assert ok, message


def test_form_refuses_plain_tcp_without_the_insecure_box_and_the_page_warns_with_it(
    cast, login, tls_engine
):
    web = login(cast.admin)
    data = {"name": "plain", "url": tls_engine.url, "tls_verify": "on", "all_teams": "on"}

    response = web.post(reverse("host_new"), data)

    assert response.status_code == 200
    [error] = response.context["form"].errors["insecure"]
    assert error.startswith(
        "A tcp:// engine without TLS lets anyone who can reach its port control it"
    )
    assert not Host.objects.filter(name="plain").exists()

    response = web.post(reverse("host_new"), {**data, "insecure": "on"}, follow=True)

    host = Host.objects.get(name="plain")
    try:
        assert (host.insecure, host.uses_tls, host.state) == (True, False, "unreachable")
        warning = "tcp:// without TLS: anyone who can reach this port controls the engine"
        assert warning in page_text(response)  # the detail page
        assert warning in page_text(web.get(reverse("host_list")))
    finally:
        forget_client(host)
