"""Alert rules, silences and alerts — through alerts.forms and alerts.services.

These writes change only the dashboard's database (no engine call), so they answer
at once (201 / 200 / 204) instead of queueing a job; the services validate, check
the scope against the gate and write the audit entries, as for the pages.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from alerts import services
from alerts.forms import RuleForm, SilenceForm
from alerts.models import Alert, AlertRule, Silence
from alerts.views import STATES
from dashboard import access

from ..serializers import (
    AlertRuleInputSerializer,
    AlertRuleSerializer,
    AlertSerializer,
    SilenceInputSerializer,
    SilenceSerializer,
)
from .base import ApiView, ErrorSerializer, form_errors
from .forms import form_data

# The service's field names, back to the form's (as alerts.views._save_rule maps them).
FORM_FIELD = {"window_seconds": "window", "for_seconds": "for_"}
ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def _can_write(user):
    return access.is_admin(user) or services.writable_teams(user).exists()


def _rule_error(exc):
    return serializers.ValidationError(
        {FORM_FIELD.get(field, field): [str(error)] for field, error in exc.errors.items()}
    )


class AlertRuleList(ApiView, generics.ListAPIView):
    """Alert rules of the user's teams (all of them for dashboard admins)."""

    queryset = AlertRule.objects.select_related("team", "host", "container")
    serializer_class = AlertRuleSerializer

    @extend_schema(request=AlertRuleInputSerializer, responses={201: AlertRuleSerializer, **ERRORS})
    def post(self, request):
        """Create a rule: the rule form's fields, checked by the same form and service."""
        user = request.user
        if not _can_write(user):
            self.refuse_write("You need the operator role in a team to make alert rules.")
        form = RuleForm(user, form_data(request.data, RuleForm(user)))
        if not form.is_valid():
            raise form_errors(form)
        try:
            rule = services.create_rule(self.actor(), form.data_for_service())
        except services.RuleError as exc:
            raise _rule_error(exc) from None
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)


class AlertRuleDetail(ApiView, generics.GenericAPIView):
    queryset = AlertRule.objects.select_related("team", "host", "container")
    serializer_class = AlertRuleSerializer

    def get(self, request, pk):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=AlertRuleInputSerializer, responses={200: AlertRuleSerializer, **ERRORS})
    def patch(self, request, pk):
        """Change some fields; the others keep their values (validated as a whole)."""
        rule = self.get_object("change")
        current = {k: v for k, v in RuleForm.initial_from(rule).items() if v is not None}
        user = request.user
        form = RuleForm(user, form_data({**current, **request.data}, RuleForm(user)))
        if not form.is_valid():
            raise form_errors(form)
        try:
            services.update_rule(self.actor(), rule, form.data_for_service())
        except services.RuleError as exc:
            raise _rule_error(exc) from None
        rule.refresh_from_db()
        return Response(self.get_serializer(rule).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, pk):
        services.delete_rule(self.actor(), self.get_object("delete"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertRuleToggle(ApiView, generics.GenericAPIView):
    queryset = AlertRule.objects.select_related("team", "host", "container")
    serializer_class = AlertRuleSerializer
    enabled = True

    @extend_schema(request=None, responses={200: AlertRuleSerializer, **ERRORS})
    def post(self, request, pk):
        rule = self.get_object("change")
        services.set_enabled(self.actor(), rule, type(self).enabled)
        return Response(self.get_serializer(rule).data)


class AlertRuleEnable(AlertRuleToggle):
    """Enable the rule."""

    enabled = True


class AlertRuleDisable(AlertRuleToggle):
    """Disable the rule (its firing alerts end: "rule disabled")."""

    enabled = False


class SilenceList(ApiView, generics.ListAPIView):
    """Silences of the user's teams, newest first (?active=true: only those in force)."""

    queryset = Silence.objects.select_related("team", "rule", "host", "created_by")
    serializer_class = SilenceSerializer

    @extend_schema(parameters=[OpenApiParameter("active", bool)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = super().get_queryset()
        if self.request.query_params.get("active") in ("1", "true"):
            qs = qs.filter(pk__in=Silence.objects.active().values("pk"))
        return qs

    @extend_schema(request=SilenceInputSerializer, responses={201: SilenceSerializer, **ERRORS})
    def post(self, request):
        """Silence alerts of a team (a rule, a host, a container name glob) for a while."""
        user = request.user
        if not _can_write(user):
            self.refuse_write("You need the operator role in a team to make silences.")
        form = SilenceForm(user, form_data(request.data, SilenceForm(user)))
        if not form.is_valid():
            raise form_errors(form)
        d = form.cleaned_data
        try:
            silence = services.create_silence(
                self.actor(),
                d["team"],
                d["until"],
                d["comment"],
                rule=d["rule"],
                host=d["host"],
                container_glob=d["container_glob"].strip() or "*",
            )
        except services.RuleError as exc:
            raise _rule_error(exc) from None
        return Response(self.get_serializer(silence).data, status=status.HTTP_201_CREATED)


class SilenceExpire(ApiView, generics.GenericAPIView):
    queryset = Silence.objects.select_related("team", "rule", "host", "created_by")
    serializer_class = SilenceSerializer

    @extend_schema(request=None, responses={200: SilenceSerializer, **ERRORS})
    def post(self, request, pk):
        """End the silence now (nothing changes if it had already ended)."""
        silence = self.get_object("change")
        services.expire_silence(self.actor(), silence)
        return Response(self.get_serializer(silence).data)


class AlertList(ApiView, generics.ListAPIView):
    """Alerts about what the user may see, newest first: firing and past."""

    queryset = Alert.objects.select_related("rule_team")
    serializer_class = AlertSerializer

    @extend_schema(parameters=[OpenApiParameter("state", str, enum=list(STATES))])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        # Alerts have no team of their own: the alerts service's rule decides (as the page).
        qs = services.visible_alerts(self.request.user, self.queryset.all())
        state = self.request.query_params.get("state") or ""
        return qs.filter(**STATES[state]) if state in STATES else qs
