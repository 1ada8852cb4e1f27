"""Hostile values in every option of the logs page: a page or a 4xx, never a 500."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from tests.dashboard.test_hostile_queries import VALUES
from tests.logs.support import shell

pytestmark = [pytest.mark.live]


def test_hostile_options_never_500(login, cast, make_container):
    c = make_container(cast.owner, cast.alpha, command=shell("echo x"))
    client = login(cast.viewer)
    url = reverse("containers:logs:page", args=[c.pk])
    for name in ["tail", "since", "q", "re", "ts"]:
        for value in VALUES:
            response = client.get(f"{url}?{name}={quote(value, safe='%')}&re=1")
            assert response.status_code < 500, (name, value)


@pytest.mark.parametrize(
    "query, message",
    [
        ("re=1&q=%28a", "Not a valid regular expression"),
        ("q=" + "a" * 201, "limited to 200 characters"),
        ("since=noon", "The start time must look like"),
    ],
)
def test_bad_options_are_a_clear_message_and_no_socket(login, cast, make_container, query, message):
    c = make_container(cast.owner, cast.alpha, command=shell("echo x"))
    page = login(cast.viewer).get(reverse("containers:logs:page", args=[c.pk]) + "?" + query)
    body = page.content.decode()
    assert page.status_code == 200 and message in body and "ws-connect" not in body
