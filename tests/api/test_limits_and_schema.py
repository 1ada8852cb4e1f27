"""Rate limit, body size, CSRF, JSON errors, hostile parameters, the OpenAPI schema."""

import io
import json
from urllib.parse import quote

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, get_resolver

from api.models import ApiToken
from dashboard.models import AuditEntry, Host, Job
from tests.api.conftest import Api, streamed

pytestmark = pytest.mark.django_db


def test_the_rate_limit_is_per_token_and_says_when_to_retry(cast, make_token, settings):
    settings.API_RATE_LIMIT = "3/min"
    one, other = Api(make_token(cast.viewer)), Api(make_token(cast.viewer))
    assert [one.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 200]
    refused = one.get("/api/v1/me/")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "try again in" in refused.json()["error"]
    assert other.get("/api/v1/me/").status_code == 200  # its own budget


def test_an_oversize_body_is_a_json_413_and_changes_nothing(cast, local_host, make_token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    api = Api(make_token(cast.operator))
    body = {"host": "local", "team": "alpha", "name": "big", "x": "y" * 2000}
    response = api.post("/api/v1/volumes/", body)
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["error"]
    assert not Job.objects.exists()


def test_bad_json_and_unknown_fields_are_400_with_a_sentence(cast, local_host, make_token):
    api = Api(make_token(cast.operator))
    response = api.client.post(
        "/api/v1/volumes/", "{not json", content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    response = api.post("/api/v1/volumes/", {"host": "local", "team": "alpha", "nmae": "x"})
    assert response.status_code == 400
    assert response.json()["fields"]["nmae"] == ["Not a field of this request."]
    response = api.post("/api/v1/containers/", {"host": "local", "team": "alpha", "image": "x",
                                                 "privileged": True})  # fmt: skip
    assert response.status_code == 400
    assert "Only dashboard admins" in response.json()["fields"]["privileged"][0]
    assert not Job.objects.exists()


def test_csrf_is_enforced_for_sessions_and_not_needed_for_tokens(cast, local_host, make_token):
    session = Client(enforce_csrf_checks=True)
    session.force_login(cast.operator)
    body = json.dumps({"host": "local", "team": "alpha", "name": "v1"})
    refused = session.post("/api/v1/volumes/", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    token = Client(enforce_csrf_checks=True).post(
        "/api/v1/volumes/",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {make_token(cast.operator)}"},
    )
    assert token.status_code == 202, token.content
    assert Job.objects.count() == 1


def test_a_session_can_read_the_api(cast, local_host, login):
    response = login(cast.viewer).get("/api/v1/hosts/")
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "local"


def test_lists_are_paginated_with_a_capped_page_size(cast, make_token, settings):
    settings.API_MAX_PAGE_SIZE = 5
    for i in range(12):
        Host.objects.create(name=f"h{i}", url="unix:///nonexistent.sock", all_teams=True)
    api = Api(make_token(cast.admin))
    page = api.get("/api/v1/hosts/", page_size=1000).json()
    assert (page["count"], len(page["results"])) == (12, 5)
    assert "page=2" in page["next"]
    assert api.get("/api/v1/hosts/", page=99).status_code == 404


def _api_routes():
    resolver = get_resolver()
    for p in resolver.url_patterns:
        if getattr(p, "app_name", None) == "api":
            for q in p.url_patterns:
                if isinstance(q, URLPattern) and str(q.pattern).startswith("api/v1/"):
                    yield str(q.pattern)


HOSTILE = ["99999999999999999999999", "²", "-1", "1e9", "<script>x</script>", "' OR 1=1 --",
           "%ff%fe", "x" * 1900, ""]  # fmt: skip
API_PARAMS = ["host", "state", "q", "page", "page_size", "user", "action", "result", "wait",
              "tail", "since", "ts", "re", "download", "follow", "format"]  # fmt: skip


def test_hostile_query_strings_through_a_token_are_never_a_500(cast, local_host, make_token):
    """Every /api/v1/ GET with junk in every parameter: a JSON answer or a 4xx, never a
    500 (tests/dashboard/test_hostile_queries.py walks the same URLs with a session)."""
    from containers.models import Container

    c = Container.objects.create(host=local_host, docker_id="f" * 64, name="gone",
                                 team=cast.alpha, state="removed")  # fmt: skip
    c.removed_at = c.first_seen
    c.save()
    job = Job.objects.create(kind="container.action", user=cast.owner)
    AuditEntry.objects.create(action="container.stop", target_name="gone", team=cast.alpha)
    failures = []
    for who in ("admin", "viewer", "outsider"):
        api = Api(make_token(cast.users[who]))
        for route in _api_routes():
            pk = job.pk if route.startswith("api/v1/jobs/") else c.pk
            path = "/" + route.replace("<int:pk>", str(pk)).replace("<action:action>", "stop")
            for value in HOSTILE:
                raw = value if "%" in value else quote(value, safe="")
                query = "&".join(f"{p}={raw}" for p in API_PARAMS)
                response = api.client.get(f"{path}?{query}", headers=api.headers)
                if response.status_code >= 500:
                    failures.append((who, path, value[:10], response.status_code))
                if who == "outsider" and response.status_code == 200 and "schema" not in path:
                    body = streamed(response).encode() if response.streaming else response.content
                    assert b"gone" not in body, path
    assert not failures


def test_the_schema_validates_and_lists_every_endpoint():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    documented = set(schema["paths"])
    routes = {
        "/" + r.replace("<int:pk>", "{id}").replace("<action:action>", "{action}")
        for r in _api_routes()
        if not r.endswith(("schema/", "docs/"))
    }
    assert routes <= documented, routes - documented
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_schema_needs_a_token_or_a_session(cast, make_token, login):
    assert Client().get("/api/v1/schema/").status_code == 401
    assert Api(make_token(cast.viewer)).get("/api/v1/schema/").status_code == 200
    assert login(cast.viewer).get("/api/v1/schema/", {"format": "json"}).status_code == 200


def test_the_docs_page_is_for_signed_in_users_and_loads_nothing_from_elsewhere(cast, login):
    assert Client().get("/api/v1/docs/").status_code == 302  # to the login page
    response = login(cast.viewer).get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html
    assert "<script>" not in html.replace(" ", "")  # no inline script: the CSP allows 'self'
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_no_token_secret_is_ever_in_an_api_answer(cast, make_token, login):
    text = make_token(cast.admin, name="ci")
    api = Api(text)
    secret = text.split("_", 2)[2]
    for path in ["/api/v1/me/", "/api/v1/audit/", "/api/v1/"]:
        assert secret not in api.get(path).content.decode()
    assert ApiToken.objects.get().secret_hash not in api.get("/api/v1/audit/").content.decode()


def test_the_api_still_reads_when_the_rate_limit_cache_is_down(cast, make_token, settings):
    # Changing CACHES resets Django's cache handler (the setting_changed signal).
    settings.CACHES = {
        **settings.CACHES,
        "api": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }
    response = Api(make_token(cast.viewer)).get("/api/v1/me/")
    assert response.status_code == 200
