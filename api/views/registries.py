"""Registries: list, detail, test login, browse repositories and tags, delete a tag.

What the registry pages do, through the same gate (`Registry` is in
`access.GRANTED_MODELS`), client and services. The password never leaves the
database: the serializer says only whether one is stored. Adding and editing
registries stays on the admin pages.
"""

from concurrent.futures import ThreadPoolExecutor

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from registries import services
from registries.client import RegistryError
from registries.manifests import valid_repository, valid_tag
from registries.models import Registry
from registries.views import CATALOG_PAGE, DETAIL_THREADS, TAGS_PAGE, _client

from ..serializers import (
    LoginCheckSerializer,
    RegistryPageSerializer,
    RegistrySerializer,
    RegistryTagDeleteSerializer,
    RegistryTagsSerializer,
)
from .base import WRITE_RESPONSES, ApiView, accepted


def _page_size(params, default, largest):
    value = params.get("n") or ""
    if value.isascii() and value.isdigit() and len(value) <= 4:
        return min(max(int(value), 1), largest)
    return default


def _unreachable(exc):
    return Response({"error": exc.message}, status=status.HTTP_502_BAD_GATEWAY)


PAGING = [
    OpenApiParameter("n", int, description="Page size"),
    OpenApiParameter("last", str, description="The previous page's `next_last`"),
]


class RegistryList(ApiView, generics.ListAPIView):
    """Registries the user's teams may use (all of them for dashboard admins)."""

    queryset = Registry.objects.prefetch_related("teams")
    serializer_class = RegistrySerializer


class RegistryDetail(ApiView, generics.GenericAPIView):
    queryset = Registry.objects.prefetch_related("teams")
    serializer_class = RegistrySerializer

    def get(self, request, pk):
        return Response(self.get_serializer(self.get_object()).data)


class RegistryTestLogin(ApiView, generics.GenericAPIView):
    queryset = Registry.objects.all()
    serializer_class = LoginCheckSerializer

    @extend_schema(request=None, responses=LoginCheckSerializer)
    def post(self, request, pk):
        """Log in with the stored credentials now; the outcome is kept on the registry."""
        registry = self.get_object("use")
        ok, message = services.check_login(registry)
        return Response({"ok": ok, "message": message})


class RegistryRepositories(ApiView, generics.GenericAPIView):
    queryset = Registry.objects.all()
    serializer_class = RegistryPageSerializer
    pagination_class = None  # the registry pages itself: ?n= and ?last=

    @extend_schema(parameters=PAGING)
    def get(self, request, pk):
        """One page of the registry's catalog (repository names)."""
        registry = self.get_object()
        n = _page_size(request.query_params, CATALOG_PAGE, 100)
        last = request.query_params.get("last") or ""
        if not valid_repository(last):
            last = ""  # junk is ignored: the first page
        try:
            with _client(registry) as client:
                page = client.catalog(n=n, last=last or None)
        except RegistryError as exc:
            return _unreachable(exc)
        names = [name for name in page.items if valid_repository(name)]
        next_last = page.next_last if page.next_last and valid_repository(page.next_last) else ""
        return Response({"items": names, "next_last": next_last})


class RegistryTags(ApiView, generics.GenericAPIView):
    queryset = Registry.objects.all()
    serializer_class = RegistryTagsSerializer
    pagination_class = None

    @extend_schema(
        parameters=[OpenApiParameter("repository", str, required=True), *PAGING],
    )
    def get(self, request, pk):
        """One page of a repository's tags with digest, kind, size, creation and platforms."""
        registry = self.get_object()
        repository = request.query_params.get("repository") or ""
        if not valid_repository(repository):
            raise serializers.ValidationError(
                {"repository": ["Give a repository name (lower case, e.g. team/app)."]}
            )
        n = _page_size(request.query_params, TAGS_PAGE, 50)
        last = request.query_params.get("last") or ""
        if not valid_tag(last):
            last = ""
        try:
            with _client(registry) as client:
                page = client.tags(repository, n=n, last=last or None)
                shown = [t for t in page.items if valid_tag(t)]
                with ThreadPoolExecutor(DETAIL_THREADS) as pool:
                    infos = list(pool.map(lambda t: client.tag_info(repository, t), shown))
        except RegistryError as exc:
            return _unreachable(exc)
        next_last = page.next_last if page.next_last and valid_tag(page.next_last) else ""
        return Response(
            RegistryTagsSerializer(
                {"repository": repository, "tags": infos, "next_last": next_last}
            ).data
        )


class RegistryDeleteTag(ApiView, generics.GenericAPIView):
    queryset = Registry.objects.all()
    serializer_class = RegistryTagDeleteSerializer

    @extend_schema(request=RegistryTagDeleteSerializer, responses=WRITE_RESPONSES)
    def post(self, request, pk):
        """Delete repository:tag from the registry, by the digest you saw (a job refuses
        if the tag has moved since)."""
        registry = self.get_object("delete_tag")
        body = RegistryTagDeleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            job = services.request_delete_tag(
                self.actor(), registry, data["repository"], data["tag"], data["digest"]
            )
        except services.RegistryInputError as exc:
            raise serializers.ValidationError({"__all__": [str(exc)]}) from None
        return accepted(job)
