"""API fixtures: tokens for the cast, and a client that sends them."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from api import tokens
from dashboard.audit import Actor


@pytest.fixture
def make_token(db):
    """make_token(user, read_only=False, team=None, days=90) -> the token text."""

    def make(user, name="t", **kwargs):
        _row, text = tokens.create_token(Actor.system(), user, name, **kwargs)
        return text

    return make


def streamed(response):
    """The body of a streamed answer (the API streams logs from an async iterator)."""

    async def read():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)().decode()


class Api:
    """A test client that authenticates every request with a bearer token."""

    def __init__(self, token):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path, **params):
        return self.client.get(path, params, headers=self.headers)

    def post(self, path, data=None):
        return self.client.post(
            path, data or {}, content_type="application/json", headers=self.headers
        )

    def delete(self, path):
        return self.client.delete(path, headers=self.headers)


@pytest.fixture
def api(make_token):
    """api(user, **token_kwargs) -> a client using a fresh token of that user."""

    def make(user, **kwargs):
        return Api(make_token(user, **kwargs))

    return make
