"""GET /api/v1/me/ — who the request acts as, and the token's limits (a CI sanity check)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from dashboard import access

from ..serializers import TokenOwnSerializer
from .base import ApiView


class Me(ApiView):
    pagination_class = None

    @extend_schema(responses=TokenOwnSerializer, tags=["about"])
    def get(self, request):
        token = access.token_of(request.user)
        return Response(
            {
                "username": request.user.get_username(),
                "dashboard_admin": access.is_admin(request.user),
                "token": None
                if token is None
                else {
                    "name": token.name,
                    "read_only": token.read_only,
                    "team": token.team.name if token.team_id else None,
                    "expires_at": token.expires_at,
                },
            }
        )
