"""Images: the list with the page's filters, detail, pull, build, tag, push, remove,
prune and export — through images.forms and images.services, as the pages do."""

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from containers.policy import PolicyError
from dashboard import access
from dashboard.models import Host
from images import services
from images.context import ContextError
from images.forms import BuildForm, ImageFilterForm, PullForm, TagChoiceForm, TagForm
from images.models import Image
from images.reference import BadReference

from ..limits import LimitedJSONParser
from ..serializers import (
    ImageBuildSerializer,
    ImagePullSerializer,
    ImageSerializer,
    ImageTagChoiceSerializer,
    ImageTagSerializer,
    PruneSerializer,
)
from .base import WRITE_RESPONSES, ApiView, accepted, form_errors
from .forms import form_data


def _can_create(user):
    """The pages' rule (images.views._can_create): a host and a team to create on."""
    return access.restrict(user, Host.objects.all(), "create_image").exists() and (
        access.is_admin(user) or access.creatable_teams(user).exists()
    )


def _refused(exc):
    """A service's refusal (bad name, policy, context) as a 400 with its sentence."""
    field = getattr(exc, "field", None) or "__all__"
    return serializers.ValidationError({field: [getattr(exc, "message", None) or str(exc)]})


class ImageList(ApiView, generics.ListAPIView):
    """Images the user may see, re-listed from the engines as on the Images page."""

    queryset = Image.objects.present().select_related("host", "team", "owner")
    serializer_class = ImageSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("host", int, description="Host id"),
            OpenApiParameter("team", int, description="Team id"),
            OpenApiParameter("q", str, description="Part of a tag or of the id"),
            OpenApiParameter("dangling", str, enum=["1", "0"], description="1 only, 0 none"),
            OpenApiParameter("shared", bool, description="Shared base images only"),
        ]
    )
    def get(self, request, *args, **kwargs):
        filters = self._filters()
        hosts = access.restrict(request.user, Host.objects.all(), "view")
        if filters.get("host"):
            hosts = hosts.filter(pk=filters["host"])
        services.refresh(list(hosts))
        return super().get(request, *args, **kwargs)

    def _filters(self):
        params = self.request.query_params
        return ImageFilterForm(params).values() if params else {}

    def get_queryset(self):
        qs = super().get_queryset()
        filters = self._filters()
        if filters.get("host"):
            qs = qs.filter(host_id=filters["host"])
        if filters.get("team"):
            qs = qs.filter(team_id=filters["team"])
        if filters.get("shared"):
            qs = qs.filter(shared=True)
        q = (filters.get("q") or "").strip().lower()
        dangling = filters.get("dangling") or ""
        if q or dangling:
            # Tags live in a JSON list: matched here as the page matches them, per tag.
            ids = [
                pk
                for pk, docker_id, tags in qs.values_list("pk", "docker_id", "tags")
                if (not q or q in docker_id or any(q in t.lower() for t in tags))
                and (dangling != "1" or not tags)
                and (dangling != "0" or tags)
            ]
            qs = qs.filter(pk__in=ids)
        return qs.order_by("host_id", "pk")


class ImageDetail(ApiView, generics.GenericAPIView):
    queryset = Image.objects.present().select_related("host", "team", "owner")
    serializer_class = ImageSerializer

    def get(self, request, pk):
        """One image (tags, digests, size, owner) and what the requester may do to it."""
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="Untag only this tag"),
            OpenApiParameter("force", bool, description="Dashboard admins: force removal"),
        ],
        responses=WRITE_RESPONSES,
    )
    def delete(self, request, pk):
        """Remove the image, or only one of its tags (?tag=); ?force=true for admins."""
        image = self.get_object("remove")
        form = TagChoiceForm(request.query_params)
        data = form.cleaned_data if form.is_valid() else {"tag": "", "force": False}
        try:
            job = services.request_remove(self.actor(), image, data["tag"], data["force"])
        except (BadReference, PolicyError) as exc:
            raise _refused(exc) from None
        return accepted(job)


class ImagePull(ApiView):
    serializer_class = ImagePullSerializer

    @extend_schema(request=ImagePullSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Pull by reference, or by registry + repository + tag (the registry's login is used)."""
        user = request.user
        if not _can_create(user):
            self.refuse_write("You need the operator role in a team to pull images.")
        form = PullForm(user, form_data(request.data, PullForm(user)))
        if not form.is_valid():
            raise form_errors(form)
        data = form.cleaned_data
        try:
            ref, registry = services.build_reference(
                user,
                data["team"],
                text=data["reference"],
                registry_id=data["registry"].pk if data["registry"] else None,
                repository=data["repository"],
                tag=data["tag"],
            )
            job = services.request_pull(self.actor(), data["host"], data["team"], ref, registry)
        except (BadReference, PolicyError) as exc:
            raise _refused(exc) from None
        return accepted(job)


class ImageBuild(ApiView):
    serializer_class = ImageBuildSerializer
    parser_classes = [LimitedJSONParser, MultiPartParser]

    def body_limit(self, request):
        # A multipart upload spools its file to disk (Django's upload handlers): allow
        # the build form's own limit; the other fields still count against the default.
        if request.content_type.startswith("multipart/"):
            return settings.IMAGE_BUILD_MAX_BYTES + 1024 * 1024
        return None

    @extend_schema(
        request={
            "application/json": ImageBuildSerializer,
            "multipart/form-data": ImageBuildSerializer,
        },
        responses=WRITE_RESPONSES,
    )
    def post(self, request):
        """Build from a Dockerfile's text (JSON), or from an uploaded context (multipart
        field `context`: tar, tar.gz or zip), with build args, target and tag."""
        user = request.user
        if not _can_create(user):
            self.refuse_write("You need the operator role in a team to build images.")
        body = {k: v for k, v in request.data.items() if k != "context"}
        form = BuildForm(user, form_data(body, BuildForm(user)), request.FILES or None)
        if not form.is_valid():
            raise form_errors(form)
        data = form.cleaned_data
        try:
            job = services.request_build(
                self.actor(),
                data["host"],
                data["team"],
                tag=data["tag"],
                dockerfile_text=data["dockerfile_text"],
                upload=data["context"],
                dockerfile=data["dockerfile"] or "Dockerfile",
                build_args=data["build_args"],
                target=data["target"],
            )
        except (BadReference, PolicyError, ContextError) as exc:
            raise _refused(exc) from None
        return accepted(job)


class ImagePrune(ApiView):
    serializer_class = PruneSerializer

    @extend_schema(request=PruneSerializer, responses=WRITE_RESPONSES)
    def post(self, request):
        """Dashboard admins: remove the dangling images of one host."""
        if not access.is_admin(request.user):
            self.refuse_write("Only dashboard admins prune images.")
        body = PruneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        host = access.get_or_404(request.user, Host.objects.all(), pk=body.validated_data["host"])
        return accepted(services.request_prune(self.actor(), host))


class ImageTag(ApiView, generics.GenericAPIView):
    queryset = Image.objects.present().select_related("host", "team", "owner")
    serializer_class = ImageTagSerializer

    @extend_schema(request=ImageTagSerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Add a name (repository:tag) to the image."""
        image = self.get_object("tag")
        form = TagForm(form_data(request.data, TagForm()))
        if not form.is_valid():
            raise form_errors(form)
        try:
            job = services.request_tag(self.actor(), image, form.cleaned_data["target"])
        except (BadReference, PolicyError) as exc:
            raise _refused(exc) from None
        return accepted(job)


class ImagePush(ApiView, generics.GenericAPIView):
    queryset = Image.objects.present().select_related("host", "team", "owner")
    serializer_class = ImageTagChoiceSerializer

    @extend_schema(request=ImageTagChoiceSerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Push one of the image's tags to its registry (the registry's login is used)."""
        image = self.get_object("push")
        body = ImageTagChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = services.request_push(self.actor(), image, body.validated_data["tag"])
        except (BadReference, PolicyError) as exc:
            raise _refused(exc) from None
        return accepted(job)


class ImageExport(ApiView, generics.GenericAPIView):
    queryset = Image.objects.present().select_related("host", "team", "owner")
    serializer_class = None

    @extend_schema(request=None, responses={(200, "application/x-tar"): OpenApiTypes.BINARY})
    def post(self, request, pk):
        """The image as a `docker save` tar, streamed (audited as on the page)."""
        image = self.get_object("export")
        chunks = services.export_chunks(self.actor(), image)
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        name = image.name.replace("/", "_").replace(":", "_")
        response["Content-Disposition"] = f'attachment; filename="{name}.tar"'
        return response
