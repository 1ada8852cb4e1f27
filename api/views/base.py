"""The base every API endpoint builds on: auth, limits, and the gate's queryset.

An endpoint names its `queryset` (and `serializer_class`); `get_queryset` applies
`access.restrict(user, …, "view")` and `get_object(action)` is `access.get_or_404`,
so a hidden object is a 404 and a refused action a 403, exactly as on the pages.
Writes call the same service functions as the pages and answer `accepted(job)`.
"""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from dashboard import access
from dashboard.audit import Actor

from ..limits import check_body_size


class JobAcceptedSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The job's id")
    url = serializers.CharField(help_text="Poll it; add ?wait=60 to wait for the end")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="One sentence saying what to do")
    fields = serializers.DictField(required=False, help_text="Per-field detail (invalid input)")


# The answers of a write, for @extend_schema(responses=WRITE_RESPONSES).
WRITE_RESPONSES = {
    202: JobAcceptedSerializer,
    400: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
}


class ApiView(generics.GenericAPIView):
    """Token (or session) authenticated, JSON, rate-limited, paginated, gated."""

    # The action `get_queryset` lists for; "view" everywhere today.
    list_action = "view"

    @classmethod
    def as_view(cls, **initkwargs):
        # The API answers 401 itself; the pages' login redirect must not apply.
        return login_not_required(super().as_view(**initkwargs))

    def body_limit(self, request):
        """The largest request body accepted (None: DATA_UPLOAD_MAX_MEMORY_SIZE)."""
        return None

    def initial(self, request, *args, **kwargs):
        check_body_size(request, self.body_limit(request))
        super().initial(request, *args, **kwargs)

    def get_queryset(self):
        return access.restrict(self.request.user, super().get_queryset(), self.list_action)

    def get_object(self, action="view"):
        """The object at <pk> if the user may see it (else 404) and `action` it (else 403)."""
        return access.get_or_404(
            self.request.user, super().get_queryset(), action, pk=self.kwargs["pk"]
        )

    def actor(self):
        return Actor.from_request(self.request)

    def refuse_write(self, message):
        """A write the user may not do: the gate's words for a read-only token."""
        raise PermissionDenied(access.refusal(self.request.user, message))


def accepted(job):
    """202 with the job to follow: {"job": id, "url": "/api/v1/jobs/<id>/"}."""
    url = reverse("api:job", args=[job.pk])
    return Response(
        {"job": job.pk, "url": url}, status=status.HTTP_202_ACCEPTED, headers={"Location": url}
    )


def form_errors(form):
    """A Django form's errors as a DRF ValidationError (per field)."""
    return serializers.ValidationError(
        {field: [str(e) for e in errs] for field, errs in form.errors.items()}
    )
