"""Containers: the list with the page's filters, detail, create, actions and logs.

Each endpoint does what the matching page does, through the same gate, forms and
services (containers.views is the model to follow).
"""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response

from containers import services
from containers.forms import CreateContainerForm
from containers.models import Container
from containers.views import STATES
from dashboard import access
from dashboard.models import Host

from ..serializers import (
    ActionSerializer,
    ContainerCreateSerializer,
    ContainerDetailSerializer,
    ContainerSerializer,
)
from .base import WRITE_RESPONSES, ApiView, accepted, form_errors
from .forms import form_data, query_id


class ContainerList(ApiView, generics.ListAPIView):
    """Containers the user may see, live from the engines as on the Containers page."""

    queryset = Container.objects.present().select_related("host", "team", "owner")
    serializer_class = ContainerSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("host", int, description="Host id"),
            OpenApiParameter("state", str, enum=STATES),
            OpenApiParameter("q", str, description="Name, image or id prefix"),
        ]
    )
    def get(self, request, *args, **kwargs):
        services.refresh_hosts(list(access.restrict(request.user, Host.objects.all(), "view")))
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = super().get_queryset()
        params = self.request.query_params
        host_id = query_id(params, "host")
        state = params.get("state") or ""
        q = (params.get("q") or "").strip()[:200]
        if host_id is not None:
            qs = qs.filter(host_id=host_id)
        if state in STATES:
            qs = qs.filter(state=state)
        if q:
            qs = qs.filter(
                Q(name__icontains=q) | Q(image__icontains=q) | Q(docker_id__startswith=q)
            )
        return qs

    @extend_schema(request=ContainerCreateSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Create a container: the create form's fields, checked by the same form and policy."""
        user = request.user
        if not access.creatable_teams(user).exists():
            self.refuse_write("You need the operator role in a team to create containers.")
        data = form_data(request.data, CreateContainerForm(user), CreateContainerForm.ADMIN_FIELDS)
        form = CreateContainerForm(user, data)
        if not form.is_valid():
            raise form_errors(form)
        job = services.request_create(
            self.actor(), form.cleaned_data["host"], form.cleaned_data["team"], form.spec
        )
        return accepted(job)


class ContainerDetail(ApiView, generics.GenericAPIView):
    queryset = Container.objects.select_related("host", "team", "owner")
    serializer_class = ContainerDetailSerializer

    def get(self, request, pk):
        """One container with the detail page's inspect summary: environment values
        for those who may reveal them (operators), keys only for viewers; credentials
        masked for everybody."""
        container = self.get_object()
        context = self.get_serializer_context()
        if container.removed_at is None:
            may_reveal = "reveal_env" in access.allowed_actions(request.user, container)
            try:
                context["summary"] = services.inspect_container(container, env_values=may_reveal)
            except services.EngineError as exc:
                context["engine_error"] = exc.message
            container.refresh_from_db()
        return Response(ContainerDetailSerializer(container, context=context).data)


class ContainerAction(ApiView, generics.GenericAPIView):
    queryset = Container.objects.select_related("host", "team")
    serializer_class = ActionSerializer

    @extend_schema(
        operation_id="containers_action",
        parameters=[
            OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(services.ACTIONS))
        ],
        request=ActionSerializer,
        responses=WRITE_RESPONSES,
    )
    def post(self, request, pk, action):
        """start, stop, restart, kill, pause, unpause or remove (with force, volumes)."""
        container = self.get_object(action)
        body = ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.request_action(
            self.actor(),
            container,
            action,
            force=body.validated_data.get("force", False),
            volumes=body.validated_data.get("volumes", False),
        )
        return accepted(job)
