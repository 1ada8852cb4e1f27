"""Volumes and networks: list, detail, create, remove — through resources.services."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response

from dashboard import access
from resources import services
from resources.forms import CreateForm, NetworkCreateForm
from resources.models import Network, Volume

from ..serializers import (
    NetworkCreateSerializer,
    NetworkSerializer,
    ResourceCreateSerializer,
    VolumeSerializer,
)
from .base import WRITE_RESPONSES, ApiView, accepted, form_errors
from .forms import form_data, query_id


class _ResourceList(ApiView, generics.ListAPIView):
    kind = ""
    sync = None
    form_class = None

    def get(self, request, *args, **kwargs):
        # Current as on the page: each visible host (or the one asked for) is re-listed.
        host_id = query_id(request.query_params, "host")
        hosts = [h for h in services.visible_hosts(request.user) if host_id in (None, h.pk)]
        services.refresh(hosts, type(self).sync)
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = super().get_queryset().select_related("host", "team", "owner")
        host_id = query_id(self.request.query_params, "host")
        return qs.filter(host_id=host_id) if host_id is not None else qs

    def post(self, request):
        user = request.user
        if not access.creatable_teams(user).exists():
            self.refuse_write(f"You need the operator role in a team to create a {self.kind}.")
        form = self.form_class(user, form_data(request.data, self.form_class(user)))
        if not form.is_valid():
            raise form_errors(form)
        data = form.cleaned_data
        options = {"internal": data["internal"]} if self.kind == "network" else {}
        job = services.request_create(
            self.actor(), self.kind, data["host"], data["team"], data["name"], options
        )
        return accepted(job)


class _ResourceDetail(ApiView, generics.GenericAPIView):
    def get(self, request, pk):
        return Response(self.get_serializer(self.get_object()).data)

    def delete(self, request, pk):
        """Remove it from the engine (refused by the engine while a container uses it)."""
        return accepted(services.request_remove(self.actor(), self.get_object("remove")))


HOST_PARAM = OpenApiParameter("host", int, description="Host id")


@extend_schema(parameters=[HOST_PARAM])
class VolumeList(_ResourceList):
    """The team volumes the user may see, per host."""

    kind, sync, form_class = "volume", services.sync_volumes, CreateForm
    queryset = Volume.objects.present()
    serializer_class = VolumeSerializer

    @extend_schema(request=ResourceCreateSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Create a named volume for a team."""
        return super().post(request)


@extend_schema(parameters=[HOST_PARAM])
class NetworkList(_ResourceList):
    """The team networks the user may see, per host."""

    kind, sync, form_class = "network", services.sync_networks, NetworkCreateForm
    queryset = Network.objects.present()
    serializer_class = NetworkSerializer

    @extend_schema(request=NetworkCreateSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Create a network for a team."""
        return super().post(request)


class VolumeDetail(_ResourceDetail):
    queryset = Volume.objects.present().select_related("host", "team", "owner")
    serializer_class = VolumeSerializer

    @extend_schema(responses=WRITE_RESPONSES)
    def delete(self, request, pk):
        return super().delete(request, pk)


class NetworkDetail(_ResourceDetail):
    queryset = Network.objects.present().select_related("host", "team", "owner")
    serializer_class = NetworkSerializer

    @extend_schema(responses=WRITE_RESPONSES)
    def delete(self, request, pk):
        return super().delete(request, pk)
