"""`Authorization: Bearer <token>` for the API; sessions keep working (with CSRF)."""

from rest_framework import authentication, exceptions

from dashboard import access
from dashboard.audit import client_ip

from . import tokens


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """A personal API token. The request's user is the token's user, narrowed by the
    token (dashboard.access.narrow): the gate then refuses what the token may not do.

    Token requests need no CSRF token: a browser never sends this header on its own.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None  # another scheme: not ours (the request stays anonymous: 401)
        raw = raw.strip()
        if not raw or " " in raw:
            raise exceptions.AuthenticationFailed(
                "Send the header as: Authorization: Bearer <token>."
            )
        try:
            token = tokens.authenticate(raw, source_ip=client_ip(request))
        except tokens.TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return access.narrow(token.user, token), token

    def authenticate_header(self, request):
        # A 401 (not 403) for anonymous requests, telling the client what to send.
        return 'Bearer realm="api"'
