"""GET /api/v1/schema/ — the OpenAPI 3 document (YAML; ?format=json for JSON)."""

import threading

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.response import Response

_lock = threading.Lock()


class SchemaView(SpectacularAPIView):
    """Generated once per process: it is the same for every user (public) and only
    changes with the code, and generating it takes a quarter of a second."""

    _schema = None

    def _get_schema_response(self, request):
        cls = type(self)
        with _lock:
            if cls._schema is None:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=self.api_version, patterns=self.patterns
                )
                cls._schema = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, self.api_version)
        return Response(
            data=cls._schema, headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )


class DocsView(SpectacularSwaggerSplitView):
    """The browsable API reference: Swagger UI from drf-spectacular-sidecar, its
    settings script served as a file (script-src 'self'), its styles from a file."""

    template_name = "api/swagger_ui.html"
