"""GET /api/v1/hosts/ and /api/v1/hosts/<id>/ — the hosts the user may see."""

from rest_framework import generics

from dashboard.models import Host

from ..serializers import HostSerializer
from .base import ApiView


class HostList(ApiView, generics.ListAPIView):
    """Hosts open to the user's teams (every host for a dashboard admin)."""

    queryset = Host.objects.all()
    serializer_class = HostSerializer


class HostDetail(ApiView, generics.RetrieveAPIView):
    queryset = Host.objects.all()
    serializer_class = HostSerializer
