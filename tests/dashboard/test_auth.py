"""Login, lockout (django-axes), logout and password change; every page needs a login."""

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db]

LOGIN_URL = "/accounts/login/"

# Every named page of the URL contract; the pks need not exist: the login check
# comes before the view looks anything up.
PAGES = [
    ("home", []),
    ("host_list", []),
    ("host_new", []),
    ("host_detail", [1]),
    ("host_edit", [1]),
    ("host_test", [1]),
    ("host_delete", [1]),
    ("team_list", []),
    ("team_detail", [1]),
    ("team_delete", [1]),
    ("membership_edit", [1]),
    ("user_create", []),
    ("audit", []),
    ("job", [1]),
    ("password_change", []),
    ("logout", []),
    ("containers:list", []),
    ("containers:new", []),
    ("containers:bulk", []),
    ("containers:detail", [1]),
    ("containers:action", [1, "stop"]),
    ("containers:assign", [1]),
]


@pytest.mark.parametrize("name, args", PAGES, ids=[name for name, _ in PAGES])
def test_anonymous_get_redirects_to_login(client, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(LOGIN_URL + "?next=")
    assert url in response.url


@pytest.mark.parametrize("name, args", [("host_delete", [1]), ("containers:bulk", [])])
def test_anonymous_post_redirects_to_login_too(client, name, args):
    response = client.post(reverse(name, args=args))
    assert response.status_code == 302
    assert response.url.startswith(LOGIN_URL)


def test_login_page_is_public(client):
    response = client.get(LOGIN_URL)
    assert response.status_code == 200
    assert b'name="password"' in response.content


def post_login(client, username, password, next_url=""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN_URL, data, REMOTE_ADDR="127.0.0.1")


def test_login_with_right_password_opens_a_session(client, cast):
    response = post_login(client, "viewer", PASSWORD)
    assert response.status_code == 302 and response.url == reverse("home")
    assert client.session[SESSION_KEY] == str(cast.viewer.pk)
    assert client.get(reverse("home")).status_code == 200


def test_login_follows_next(client, cast):
    response = post_login(client, "viewer", PASSWORD, next_url=reverse("audit"))
    assert response.status_code == 302 and response.url == reverse("audit")


def test_login_with_wrong_password_shows_an_error(client, cast):
    response = post_login(client, "viewer", "wrong")
    assert response.status_code == 200
    assert b"flash-error" in response.content
    assert SESSION_KEY not in client.session


def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(client, cast):
    assert settings.AXES_FAILURE_LIMIT == 3
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_login(client, "viewer", "wrong").status_code == 200
    locked = post_login(client, "viewer", "wrong")
    assert locked.status_code == 429
    response = post_login(client, "viewer", PASSWORD)
    assert response.status_code == 429
    assert SESSION_KEY not in client.session
    body = response.content.decode()
    assert "Too many failed logins" in body
    assert "axes_reset_username" in body  # the page tells how to get back in
    # Another account from the same address is not locked by viewer's failures.
    assert post_login(client, "operator", PASSWORD).status_code == 302


def test_successful_login_resets_the_failure_count(client, cast):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, "viewer", "wrong")
    assert post_login(client, "viewer", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_login(client, "viewer", "wrong").status_code == 200
    assert post_login(client, "viewer", PASSWORD).status_code == 302


def test_logout_by_get_is_refused_and_keeps_the_session(client, cast):
    client.force_login(cast.viewer)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("home")).status_code == 200


def test_logout_by_post_ends_the_session(client, cast):
    client.force_login(cast.viewer)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert SESSION_KEY not in client.session
    assert client.get(reverse("home")).url.startswith(LOGIN_URL)


def test_password_change_needs_the_old_password(client, cast):
    client.force_login(cast.viewer)
    assert client.get(reverse("password_change")).status_code == 200
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "not-the-old-one",
            "new_password1": "A-new-pass-456",
            "new_password2": "A-new-pass-456",
        },
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password(PASSWORD)


def test_password_change_with_old_password_sets_the_new_one(client, cast):
    client.force_login(cast.viewer)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "A-new-pass-456",
            "new_password2": "A-new-pass-456",
        },
    )
    assert response.status_code == 302 and response.url == reverse("password_change_done")
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password("A-new-pass-456")
    assert not cast.viewer.check_password(PASSWORD)
    # The session that changed it stays valid; the new password logs in.
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert post_login(client, "viewer", PASSWORD).status_code == 200
    assert post_login(client, "viewer", "A-new-pass-456").status_code == 302


def test_password_change_refuses_a_weak_password(client, cast):
    client.force_login(cast.viewer)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert response.status_code == 200
    assert "new_password2" in response.context["form"].errors
    cast.viewer.refresh_from_db()
    assert cast.viewer.check_password(PASSWORD)
