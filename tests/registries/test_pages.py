"""Registry pages against the real registry: what they show, how they page, how they
say what went wrong, and how they treat bad input and hostile strings."""

import io
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse

from dashboard.models import AuditEntry
from registries.manifests import Platform, TagInfo
from registries.models import Registry
from tests.registries.conftest import namespace


def test_repositories_page_lists_links_and_pages(cast, login, registry, pushed):
    client = login(cast.viewer)
    url = reverse("registries:repositories", args=[registry.pk])
    ns = namespace()
    seen, page_url, pages = [], f"{url}?n=1", 0
    while page_url and pages < 50:
        response = client.get(page_url)
        assert response.status_code == 200
        seen += [name for name, _ok in response.context["names"]]
        page_url = response.context["next_url"]
        pages += 1
    assert {f"{ns}/app", f"{ns}/web", f"{ns}/tools/cli"} <= set(seen)
    first = client.get(url).content.decode()
    tags_url = reverse("registries:tags", args=[registry.pk, f"{ns}/tools/cli"])
    assert f'href="{tags_url}"' in first
    assert f"{registry.address}/{ns}/tools/cli" in first  # how to pull it


def test_tags_page_shows_digest_kind_size_and_date(cast, login, registry, pushed):
    ns = namespace()
    response = login(cast.viewer).get(reverse("registries:tags", args=[registry.pk, f"{ns}/app"]))
    page = response.content.decode()
    assert [i.tag for i in response.context["infos"]] == ["latest", "v1", "v2"]
    v1 = response.context["infos"][1]
    assert v1.digest == pushed[f"{ns}/app:v1"] and v1.size and v1.created
    assert f'title="{v1.digest}"' in page
    # All three tags are the test image: each says which others share its digest.
    assert v1.shared_with == ["latest", "v2"] and "same image as latest, v2" in page
    assert v1.created.strftime("%Y-%m-%d") in page and filesizeformat(v1.size) in page
    paged = login(cast.viewer).get(
        reverse("registries:tags", args=[registry.pk, f"{ns}/app"]), {"n": 2}
    )
    assert [i.tag for i in paged.context["infos"]] == ["latest", "v1"]
    nxt = login(cast.viewer).get(paged.context["next_url"])
    assert [i.tag for i in nxt.context["infos"]] == ["v2"] and not nxt.context["next_url"]


def test_a_repository_is_opened_by_name(cast, login, registry, pushed):
    client = login(cast.viewer)
    url = reverse("registries:repositories", args=[registry.pk])
    opened = client.get(url, {"repository": f"{namespace()}/tools/cli"})
    assert opened.status_code == 302
    assert opened["Location"] == reverse(
        "registries:tags", args=[registry.pk, f"{namespace()}/tools/cli"]
    )
    refused = client.get(url, {"repository": "Bad Name/<x>"}, follow=True)
    assert "Not a repository name" in refused.content.decode()
    assert "<x>" not in refused.content.decode()


def test_wrong_credentials_say_unauthorized_on_every_page(cast, login, registry, pushed):
    registry.password = "not-the-password"
    registry.save()
    client = login(cast.operator)
    for url in (
        reverse("registries:repositories", args=[registry.pk]),
        reverse("registries:tags", args=[registry.pk, f"{namespace()}/app"]),
    ):
        page = client.get(url).content.decode()
        assert "Unauthorized: registry" in page and "not-the-password" not in page
    test = client.post(reverse("registries:test", args=[registry.pk]), HTTP_HX_REQUEST="true")
    assert "Login failed" in test.content.decode()
    registry.refresh_from_db()
    assert registry.last_error.startswith("Unauthorized")
    assert "failed" in client.get(reverse("registries:list")).content.decode()


def test_stopped_registry_says_unreachable(cast, login, registry, registry_server):
    client = login(cast.operator)
    registry_server.stop()
    try:
        page = client.get(reverse("registries:repositories", args=[registry.pk]))
        test = client.post(reverse("registries:test", args=[registry.pk]), HTTP_HX_REQUEST="true")
    finally:
        registry_server.start()
    assert page.status_code == 200
    assert "is unreachable: connection refused" in page.content.decode()
    assert "Login failed" in test.content.decode() and "unreachable" in test.content.decode()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://r.example.com", "https:// or http://"),
        ("https://user:pw@r.example.com", "their own fields"),
        ("r.example.com/v2/", "host (and port) only"),
        ("r.example.com:99999", "Not a registry address"),
        ("<script>.example.com", "not a valid host name"),
    ],
)
def test_malformed_address_is_refused_and_nothing_is_saved(cast, login, url, error):
    response = login(cast.admin).post(
        reverse("registries:new"), {"name": "bad", "url": url, "password": "pw"}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert "<script>.example" not in response.content.decode()
    assert not Registry.objects.exists() and not AuditEntry.objects.exists()


def test_duplicate_name_and_bad_ca_are_refused(cast, login, registry):
    client = login(cast.admin)
    dup = client.post(reverse("registries:new"), {"name": registry.name, "url": "r.example.com"})
    assert "already a registry named" in dup.content.decode()
    ca = client.post(
        reverse("registries:new"), {"name": "x", "url": "r.example.com", "ca_cert": "junk"}
    )
    assert "Paste a PEM certificate" in ca.content.decode()
    assert Registry.objects.count() == 1


def test_html_in_names_from_a_registry_is_escaped():
    # A registry is not trusted to follow the name grammar: what it says is escaped.
    reg = Registry(pk=1, name="r", url="http://127.0.0.1:5000")
    hostile = '<script>alert("x")</script>'
    table = render_to_string(
        "registries/_repository_table.html", {"registry": reg, "names": [(hostile, False)]}
    )
    assert hostile not in table and "&lt;script&gt;" in table
    info = TagInfo(tag="v1", digest="sha256:" + "a" * 64, media_type=hostile)
    info.platforms = [Platform(os=hostile, architecture="<b>")]
    row = render_to_string(
        "registries/_tag_row.html",
        {"registry": reg, "repository": "a", "info": info, "can_delete": True},
    )
    assert hostile not in row and "<b>" not in row and "&lt;script&gt;" in row


def test_repository_path_with_html_is_a_404_escaped(cast, login, registry):
    response = login(cast.admin).get(
        f"/registries/{registry.pk}/tags/{quote('<script>x</script>')}/"
    )
    assert response.status_code == 404
    assert "<script>x</script>" not in response.content.decode()


HOSTILE = ["-1", "0", "99999999999999999999", "²", "<script>", "' OR 1=1", "%ff", "x" * 3000, ""]


def test_junk_query_parameters_never_500(cast, login, registry, pushed):
    client = login(cast.viewer)
    urls = [
        reverse("registries:list"),
        reverse("registries:detail", args=[registry.pk]),
        reverse("registries:repositories", args=[registry.pk]),
        reverse("registries:tags", args=[registry.pk, f"{namespace()}/app"]),
    ]
    for url in urls:
        for value in HOSTILE:
            raw = value if "%" in value else quote(value, safe="")
            response = client.get(f"{url}?n={raw}&last={raw}&page={raw}")
            # 400: the request itself is refused (bad encoding, too long); else the page.
            bad_request = value == "%ff" or len(value) > 1000
            assert response.status_code == (400 if bad_request else 200), (url, value[:10])
            assert "<script>" not in response.content.decode()


def test_add_registry_creates_then_updates_by_name(cast, registry_server):
    out = io.StringIO()
    stdin = io.StringIO(registry_server.password + "\n")
    call_command(
        "add_registry",
        "company",
        registry_server.url,
        "--username",
        registry_server.username,
        "--password-stdin",
        "--team",
        "alpha",
        stdin=stdin,
        stdout=out,
    )
    reg = Registry.objects.get(name="company")
    assert reg.password == registry_server.password
    assert reg.url == f"http://{registry_server.url}"
    assert list(reg.teams.values_list("name", flat=True)) == ["alpha"]
    assert "Added company" in out.getvalue() and "login OK" in out.getvalue()
    assert registry_server.password not in out.getvalue()
    entry = AuditEntry.objects.get(action="registry.create")
    assert entry.username == "system" and registry_server.password not in str(entry.params)

    out = io.StringIO()
    call_command("add_registry", "company", registry_server.url, "--team", "beta", stdout=out)
    reg.refresh_from_db()
    assert sorted(reg.teams.values_list("name", flat=True)) == ["alpha", "beta"]
    assert reg.password == registry_server.password  # kept: no --password-stdin
    assert "Updated company" in out.getvalue()

    out = io.StringIO()
    call_command("add_registry", "company", registry_server.url, stdout=out)
    assert "Registry exists: company" in out.getvalue()
    assert AuditEntry.objects.filter(action="registry.update").count() == 1

    out = io.StringIO()
    call_command(
        "add_registry", "company", registry_server.url, "--password-stdin",
        stdin=io.StringIO("wrong-one\n"), stdout=out,
    )  # fmt: skip
    assert "login FAILED — Unauthorized" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (["x", "ftp://r"], "", "https:// or http://"),
        (["x", "r.example.com", "--team", "nope"], "", "No team named 'nope'"),
        (["x", "r.example.com", "--password-stdin"], "", "nothing was read from stdin"),
        (["x", "r.example.com", "--ca-cert", "/nonexistent.pem"], "", "--ca-cert"),
    ],
)
def test_add_registry_refuses_bad_input(cast, args, stdin, error):
    with pytest.raises(CommandError, match=error):
        call_command("add_registry", *args, stdin=io.StringIO(stdin), stdout=io.StringIO())
    assert not Registry.objects.exists()
