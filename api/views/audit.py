"""GET /api/v1/audit/ — the audit log with the page's filters, as the page shows it."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics

from dashboard.forms import AuditFilterForm
from dashboard.models import AuditEntry

from ..serializers import AuditEntrySerializer
from .base import ApiView


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, description="Target name, message or target id prefix"),
        OpenApiParameter("user", str, description="Username"),
        OpenApiParameter("action", str, description="e.g. container.stop"),
        OpenApiParameter("host", int, description="Host id"),
        OpenApiParameter("result", str, enum=list(AuditEntry.Result.values)),
    ]
)
class AuditList(ApiView, generics.ListAPIView):
    """Entries the user may see: dashboard admins all, others their teams'. Invalid
    filters are ignored, as on the page."""

    queryset = AuditEntry.objects.select_related("team")
    serializer_class = AuditEntrySerializer

    def get_queryset(self):
        form = AuditFilterForm(self.request.query_params or None, self.request.user)
        return form.filter(super().get_queryset())
