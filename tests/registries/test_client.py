"""The registry client against a real registry (Distribution 2.8): catalog and tags with
pagination, digests, sizes and dates, manifest lists and OCI indexes, and the errors an
operator must be able to tell apart."""

import hashlib
import json

import pytest
import requests

from registries.client import RegistryClient, RegistryError
from registries.manifests import OCI_INDEX
from registries.models import Registry
from tests.registries.conftest import namespace, push
from tests.support.registry import TestRegistry, TokenServer

DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def as_registry(server, password=None, scheme="http"):
    reg = Registry(name="r", url=f"{scheme}://{server.url}", username=server.username)
    reg.password = server.password if password is None else password
    return reg


def all_pages(fetch, n):
    items, last, pages = [], None, 0
    while True:
        page = fetch(n=n, last=last)
        pages += 1
        assert len(page.items) <= n
        items += page.items
        if page.next_last is None:
            return items, pages
        last = page.next_last


def test_catalog_is_read_page_by_page_from_the_link_header(registry_server, pushed):
    ns = namespace()
    with RegistryClient(as_registry(registry_server)) as client:
        names, pages = all_pages(client.catalog, n=2)
    mine = [n for n in names if n.startswith(f"{ns}/")]
    # Other tests of the run add repositories of their own; the catalog is sorted.
    assert {f"{ns}/app", f"{ns}/tools/cli", f"{ns}/web"} <= set(mine) and mine == sorted(mine)
    assert pages >= 2
    assert len(names) == len(set(names))


def test_tags_have_the_pushed_digest_size_and_creation_date(registry_server, pushed):
    ns = namespace()
    with RegistryClient(as_registry(registry_server)) as client:
        tags, pages = all_pages(lambda n, last: client.tags(f"{ns}/app", n=n, last=last), n=2)
        assert sorted(tags) == ["latest", "v1", "v2"] and pages == 2
        info = client.tag_info(f"{ns}/app", "v1")
        _digest, _mt, manifest = client.manifest(f"{ns}/app", "v1")
    assert info.error == ""
    assert info.digest == pushed[f"{ns}/app:v1"]
    assert info.kind == "image"
    layers = sum(layer["size"] for layer in manifest["layers"])
    assert info.size == manifest["config"]["size"] + layers > 0
    assert info.created is not None and info.created.year >= 2020


def test_manifest_lists_and_oci_indexes_show_each_platform(docker_client, registry_server, pushed):
    ns = namespace()
    # An index may only name manifests of its own repository.
    push(docker_client, registry_server, f"{ns}/multi", "single")
    base = registry_server.http_url
    auth = (registry_server.username, registry_server.password)
    child = requests.get(
        f"{base}/v2/{ns}/multi/manifests/single",
        auth=auth,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=5,
    )
    child_ref = {
        "mediaType": child.headers["Content-Type"],
        "digest": child.headers["Docker-Content-Digest"],
        "size": len(child.content),
    }
    for tag, media_type in (("oci", OCI_INDEX), ("list", DOCKER_LIST)):
        index = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {**child_ref, "platform": {"os": "linux", "architecture": "amd64"}},
                {**child_ref, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            ],
        }
        body = json.dumps(index).encode()
        put = requests.put(
            f"{base}/v2/{ns}/multi/manifests/{tag}",
            data=body,
            auth=auth,
            headers={"Content-Type": media_type},
            timeout=5,
        )
        assert put.status_code == 201, put.text
        with RegistryClient(as_registry(registry_server)) as client:
            info = client.tag_info(f"{ns}/multi", tag)
        assert info.error == ""
        assert info.kind == "multi-platform" and info.media_type == media_type
        assert info.digest == "sha256:" + hashlib.sha256(body).hexdigest()
        assert [p.label for p in info.platforms] == ["linux/amd64", "linux/arm/v7"]
        single = info.platforms[0]
        assert single.digest == child_ref["digest"] and single.size and single.created
        assert info.size == 2 * single.size


def test_wrong_password_is_unauthorized(registry_server):
    bad = "not-the-password-123"
    with RegistryClient(as_registry(registry_server, password=bad)) as client:
        with pytest.raises(RegistryError) as err:
            client.check_login()
    assert err.value.kind == RegistryError.UNAUTHORIZED
    assert str(err.value).startswith("Unauthorized")
    assert bad not in str(err.value)


def test_login_ok_with_the_right_password(registry_server):
    with RegistryClient(as_registry(registry_server)) as client:
        assert client.check_login() == f"Logged in to {registry_server.url} as pusher."


def test_stopped_registry_is_unreachable(registry_server):
    registry_server.stop()
    try:
        with RegistryClient(as_registry(registry_server)) as client:
            with pytest.raises(RegistryError) as err:
                client.catalog()
    finally:
        registry_server.start()
    assert err.value.kind == RegistryError.UNREACHABLE
    assert "unreachable" in str(err.value) and "connection refused" in str(err.value)


def test_a_page_budget_stops_further_calls(registry_server, pushed):
    with RegistryClient(as_registry(registry_server), budget=1e-9) as client:
        with pytest.raises(RegistryError) as err:
            client.catalog()
    assert err.value.kind == RegistryError.UNREACHABLE and "too slow" in str(err.value)


def test_https_to_a_plain_http_registry_is_a_tls_error(registry_server):
    with RegistryClient(as_registry(registry_server, scheme="https")) as client:
        with pytest.raises(RegistryError) as err:
            client.check_login()
    assert err.value.kind == RegistryError.TLS
    assert "does not speak TLS" in str(err.value)


def test_unknown_repository_and_tag_are_not_found(registry_server, pushed):
    with RegistryClient(as_registry(registry_server)) as client:
        with pytest.raises(RegistryError) as err:
            client.tags(f"{namespace()}/nothing-here")
        assert err.value.kind == RegistryError.NOT_FOUND
        info = client.tag_info(f"{namespace()}/app", "no-such-tag")
        assert info.error.startswith("Not found")


@pytest.mark.parametrize("name", ["../../v2/_catalog", "App", "a//b", "a/", "<b>x</b>", "a?b"])
def test_names_outside_the_grammar_never_reach_the_registry(name):
    reg = Registry(name="r", url="http://127.0.0.1:9")  # nothing listens: a call would fail
    with RegistryClient(reg) as client:
        with pytest.raises(RegistryError) as err:
            client.tags(name)
    assert err.value.kind == RegistryError.NOT_FOUND


@pytest.fixture(scope="module")
def token_registry():
    tokens = TokenServer("tokuser", "tok-secret-1")
    server = TestRegistry("tokuser", "tok-secret-1", token_server=tokens)
    try:
        server.start()
        yield server, tokens
    finally:
        server.destroy()
        tokens.close()


def test_bearer_token_flow_browse_and_delete(docker_client, token_registry):
    server, tokens = token_registry
    digest = push(docker_client, server, "tok/app", "one", unique=True)
    before = tokens.issued
    with RegistryClient(as_registry(server)) as client:
        assert "as tokuser" in client.check_login()
        assert client.catalog().items == ["tok/app"]
        assert client.tags("tok/app").items == ["one"]
        info = client.tag_info("tok/app", "one")
        assert info.digest == digest and info.size and info.created
        client.delete_manifest("tok/app", digest)
        assert client.tags("tok/app").items == []
    assert tokens.issued > before  # the registry sent us to the token service
    with RegistryClient(as_registry(server, password="nope")) as client:
        with pytest.raises(RegistryError) as err:
            client.catalog()
    assert err.value.kind == RegistryError.UNAUTHORIZED


def test_registry_without_deletes_says_so(docker_client):
    with TestRegistry(delete_enabled=False) as server:
        digest = push(docker_client, server, "keep/app", "v1", unique=True)
        with RegistryClient(as_registry(server)) as client:
            with pytest.raises(RegistryError) as err:
                client.delete_manifest("keep/app", digest)
            assert client.tags("keep/app").items == ["v1"]
    assert err.value.kind == RegistryError.UNSUPPORTED
    assert "does not allow" in str(err.value)
