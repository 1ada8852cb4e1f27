"""GET /api/v1/audit/ — the audit log with the page's filters, as the page shows it."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics

from dashboard import access
from dashboard.forms import AuditFilterForm
from dashboard.models import AuditEntry, Host

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
        entries = super().get_queryset()
        form = AuditFilterForm(self.request.query_params or None)
        form.fields["host"].queryset = access.restrict(self.request.user, Host.objects.all())
        if not form.is_valid():
            return entries
        data = form.cleaned_data
        if data["q"]:
            entries = entries.filter(
                Q(target_name__icontains=data["q"])
                | Q(message__icontains=data["q"])
                | Q(target_id__startswith=data["q"])
            )
        if data["user"]:
            entries = entries.filter(username__iexact=data["user"])
        if data["action"]:
            entries = entries.filter(action__icontains=data["action"])
        if data["host"]:
            entries = entries.filter(host_name=data["host"].name)
        if data["result"]:
            entries = entries.filter(result=data["result"])
        return entries
