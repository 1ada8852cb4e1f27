"""Stacks: list (the page's host filter), detail (services and containers as the page
shows them), create from a compose file, deploy (optionally a new file), redeploy, pull,
scale and down — through stacks.forms and stacks.services, as the pages do."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from dashboard import access
from dashboard.models import Job
from stacks import services
from stacks.forms import EditForm, StackForm
from stacks.models import Stack, StackContainer
from stacks.policy import StackPolicyError
from stacks.views import _services

from ..serializers import (
    StackCreateSerializer,
    StackDeploySerializer,
    StackDownSerializer,
    StackScaleSerializer,
    StackSerializer,
)
from .base import WRITE_RESPONSES, ApiView, accepted, form_errors
from .forms import form_data, query_id

QUERYSET = Stack.objects.present().select_related("host", "team", "owner", "current_version")


REQUEST_FIELDS = ("host", "team", "name", "env", "service", "replicas")


def _refused(exc):
    """A stack service's refusal as a 400 with its sentence (which names the compose
    service and key); an engine failure is left to the API's 502."""
    if exc.key in REQUEST_FIELDS:
        field = exc.key
    else:
        field = "compose" if exc.service else "__all__"
    return serializers.ValidationError({field: [exc.message]})


class StackList(ApiView, generics.ListAPIView):
    """Stacks the user may see (as on the Stacks page)."""

    queryset = QUERYSET
    serializer_class = StackSerializer

    @extend_schema(parameters=[OpenApiParameter("host", int, description="Host id")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = super().get_queryset()
        host_id = query_id(self.request.query_params, "host")
        return qs.filter(host_id=host_id) if host_id is not None else qs

    @extend_schema(request=StackCreateSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Create a stack from a compose file (and env file) and deploy it."""
        user = request.user
        if not access.creatable_teams(user).exists():
            self.refuse_write("You need the operator role in a team to deploy stacks.")
        # The page's form, compose source only (git stacks are made on the page).
        form = StackForm(user, form_data(request.data, StackForm(user)))
        extra = set(request.data) - {"host", "team", "name", "compose", "env"}
        if extra:
            raise serializers.ValidationError(
                {key: ["Not a field of this request."] for key in sorted(extra)}
            )
        if not form.is_valid():
            raise form_errors(form)
        data = form.cleaned_data
        try:
            _stack, job = services.create_stack(
                self.actor(),
                host=data["host"],
                team=data["team"],
                name=data["name"],
                source=Stack.Source.EDITOR,
                compose_text=(data["compose"] or "").replace("\r\n", "\n"),
                env_text=(data["env"] or "").replace("\r\n", "\n"),
            )
        except StackPolicyError as exc:
            raise _refused(exc) from exc
        return accepted(job)


class StackDetail(ApiView):
    queryset = QUERYSET
    serializer_class = StackSerializer

    def get(self, request, pk):
        """The stack, its services with their containers, its env keys and recent jobs.

        The compose file only for those the version page shows it to (operators);
        env values never (the page shows keys only)."""
        stack = self.get_object()
        data = self.get_serializer(stack).data
        members = list(
            StackContainer.objects.filter(
                stack=stack, container__removed_at__isnull=True
            ).select_related("container")
        )
        info = _services(stack)
        for m in members:
            info.setdefault(m.service, {"image": m.container.image, "build": False})
        rows = []
        for name, svc in info.items():
            containers = [m.container for m in members if m.service == name]
            rows.append(
                {
                    "name": name,
                    "image": svc.get("image", ""),
                    "build": bool(svc.get("build")),
                    "replicas": stack.scale.get(name),
                    "running": sum(c.state == "running" for c in containers),
                    "containers": [
                        {
                            "id": c.pk,
                            "name": c.name,
                            "state": c.state,
                            "url": f"/api/v1/containers/{c.pk}/",
                        }
                        for c in containers
                    ],
                }
            )
        version = stack.current_version
        jobs = Job.objects.filter(params__stack_id=stack.pk)[:8]
        data.update(
            services=rows,
            env_keys=[
                line.partition("=")[0]
                for line in (version.env if version else "").splitlines()
                if "=" in line
            ],
            compose=(
                version.compose
                if version is not None and access.can(request.user, stack, "reveal_env")
                else None
            ),
            jobs=[
                {"id": j.pk, "kind": j.kind, "status": j.status, "created": j.created_at}
                for j in jobs
            ],
        )
        return Response(data)


class _StackWrite(ApiView):
    queryset = QUERYSET
    serializer_class = StackSerializer
    action = ""

    def stack(self, action):
        return self.get_object(action)

    def post(self, request, pk):
        try:
            job = self.run(request)
        except StackPolicyError as exc:
            raise _refused(exc) from exc
        return accepted(job)

    def body(self, serializer_class):
        serializer = serializer_class(data=request_data(self.request))
        serializer.is_valid(raise_exception=True)
        unknown = set(self.request.data) - set(serializer.fields)
        if unknown:
            raise serializers.ValidationError(
                {key: ["Not a field of this request."] for key in sorted(unknown)}
            )
        return serializer.validated_data


def request_data(request):
    return request.data if hasattr(request.data, "keys") else {}


class StackDeploy(_StackWrite):
    @extend_schema(request=StackDeploySerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Deploy the current version, or (with `compose`) a new version of the file."""
        return super().post(request, pk)

    def run(self, request):
        data = self.body(StackDeploySerializer)
        if "compose" not in data:
            if "env" in data or "note" in data:
                raise serializers.ValidationError({"compose": ["Give the new compose file."]})
            return services.request_deploy(self.actor(), self.stack("deploy"), "redeploy")
        stack = self.stack("edit")
        current = stack.current_version
        form = EditForm(
            {
                "compose": data["compose"],
                # Without `env` the current env file is kept.
                "env": data.get("env", current.env if current else ""),
                "note": data.get("note", ""),
            }
        )
        if not form.is_valid():
            raise form_errors(form)
        clean = form.cleaned_data
        return services.edit_stack(
            self.actor(),
            stack,
            clean["compose"].replace("\r\n", "\n"),
            (clean["env"] or "").replace("\r\n", "\n"),
            clean["note"],
        )


class StackRedeploy(_StackWrite):
    @extend_schema(request=None, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Deploy the current version again."""
        return super().post(request, pk)

    def run(self, request):
        self.body(serializers.Serializer)
        return services.request_deploy(self.actor(), self.stack("deploy"), "redeploy")


class StackPull(_StackWrite):
    @extend_schema(request=None, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Pull every service's image, then redeploy (what a CI calls after a push)."""
        return super().post(request, pk)

    def run(self, request):
        self.body(serializers.Serializer)
        return services.request_deploy(self.actor(), self.stack("pull"), "pull")


class StackScale(_StackWrite):
    @extend_schema(request=StackScaleSerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Run `replicas` containers of `service` (0 to 50)."""
        return super().post(request, pk)

    def run(self, request):
        stack = self.stack("scale")
        data = self.body(StackScaleSerializer)
        return services.request_action(
            self.actor(), stack, "scale", data["service"].strip()[:128], data["replicas"]
        )


class StackDown(_StackWrite):
    @extend_schema(request=StackDownSerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Take the stack down (containers and networks; `volumes`: its volumes too)."""
        return super().post(request, pk)

    def run(self, request):
        stack = self.stack("down")
        data = self.body(StackDownSerializer)
        return services.request_action(
            self.actor(), stack, "down", volumes=bool(data.get("volumes"))
        )
