"""Breach 5: `?host=99999999999999999999999` and `?host=²` answered 500.

Every page, walked as an admin, a team viewer and an outsider, with hostile values
in every query parameter any page reads: the answer is a page or a 4xx, never a
500, and never a hidden object's name.
"""

from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.models import AuditEntry, Job
from tests.support.helpers import unique

PARAMS = ["host", "state", "q", "page", "user", "action", "result", "range", "format",
          "download", "follow", "team"]  # fmt: skip
VALUES = [
    "99999999999999999999999",
    "²",
    "-1",
    "0",
    "1e9",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00",
    "%ff%fe",
    "x" * 5000,
    "",
]


def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def concrete(route, ids):
    """A path for a route: ids of real objects for <int:…>, a valid word for converters."""
    path = route
    for token, value in [
        ("<int:pk>", ids["pk"]),
        ("<action:action>", "stop"),
        ("<kind:kind>", "volume"),
        ("<path:repository>", "team/app"),
    ]:
        path = path.replace(token, str(value))
    return None if "<" in path else "/" + path


@pytest.fixture
def pages(cast, make_container):
    # A unique name: test runs sharing the engine would collide on a fixed one.
    c = make_container(owner=cast.owner, team=cast.alpha, name=unique("hidden-from-beta"))
    job = Job.objects.create(kind="container.action", user=cast.owner, container=c)
    AuditEntry.objects.create(action="container.stop", target_name="hidden-from-beta")
    ids = {"pk": max(c.pk, job.pk)}
    routes = [concrete(r, ids) for r in walk(get_resolver().url_patterns)]
    return [r for r in routes if r and not r.startswith("/static")]


@pytest.mark.live
@pytest.mark.parametrize("who", ["admin", "viewer", "outsider"])
def test_every_page_survives_hostile_query_strings(cast, login, pages, who, settings):
    settings.MIRROR_FRESH_SECONDS = 600  # the mirror is current; no engine call per request
    client = login(getattr(cast, who))
    failures = []
    for path in pages:
        for value in VALUES:
            # Every parameter at once: each page reads the ones it knows.
            raw = value if "%" in value else quote(value, safe="")
            response = client.get(f"{path}?" + "&".join(f"{p}={raw}" for p in PARAMS))
            if response.status_code >= 500:
                failures.append((path, value[:20], response.status_code))
            if who == "outsider" and response.status_code == 200:
                assert b"hidden-from-beta" not in response.content, (path, value[:20])
    assert not failures


def test_nul_in_a_query_string_is_a_400_with_a_reason(cast, login):
    response = login(cast.viewer).get("/containers/?q=a%00b")
    assert response.status_code == 400
    assert b"NUL" in response.content


# Form fields the pages' POST handlers read (ids of hosts, teams, containers above all).
FORM_FIELDS = ["host", "team", "teams", "ids", "to_host", "user", "role", "action", "name",
               "url", "project", "key", "tag", "image", "volumes", "all_teams"]  # fmt: skip


@pytest.mark.live
def test_every_form_survives_out_of_range_and_non_ascii_ids(cast, login, pages, settings):
    """A posted id past the database's integer range, or a digit like ², was a 500 on
    the host, registry, bulk-action and adopt forms: now a form error."""
    settings.MIRROR_FRESH_SECONDS = 600
    client = login(cast.admin)
    client.raise_request_exception = False
    failures = []
    for path in pages:
        if path.startswith("/accounts/logout"):
            continue
        for value in ("99999999999999999999999", "²", "[]"):
            response = client.post(path, {field: value for field in FORM_FIELDS})
            if response.status_code >= 500:
                failures.append((path, value, response.status_code))
    assert not failures
