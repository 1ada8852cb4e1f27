"""Rule and silence forms; choices come from what the user may scope (services)."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from dashboard import access

from . import metrics, rules, services
from .models import AlertRule, Event, Op


class DurationField(forms.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in ("", None):
            return 0
        try:
            return rules.parse_duration(value, self.label or "duration")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    team = forms.ModelChoiceField(queryset=None, required=False)
    host = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any host")
    container = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any container")
    name_glob = forms.CharField(max_length=255, initial="*", label="Container name glob")
    metric = forms.ChoiceField(required=False)
    op = forms.ChoiceField(choices=Op.choices, initial=">", label="Operator")
    threshold = forms.FloatField(required=False)
    window = DurationField(initial="1m", label="Average over", required=False)
    event = forms.ChoiceField(required=False, choices=[("", "—")] + list(Event.choices))
    restart_count = forms.IntegerField(initial=3, min_value=1, max_value=1000, label="Restarts")
    restart_window = DurationField(initial="10m", label="Within", required=False)
    for_ = DurationField(initial="0s", label="For", required=False)
    repeat = DurationField(initial="0s", label="Repeat every (0: never)", required=False)
    send_resolved = forms.BooleanField(required=False, initial=True)
    recipients = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Email addresses, one per line"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        admin = access.is_admin(user)
        self.fields["team"].queryset = services.writable_teams(user)
        self.fields["team"].required = not admin
        self.fields["team"].empty_label = "All teams (and unowned containers)" if admin else None
        self.fields["host"].queryset = services.scope_hosts(user)
        self.fields["container"].queryset = services.scope_containers(user)
        self.fields["metric"].choices = [("", "—")] + metrics.choices()
        # Django renders a field named for_ as "for_"; the label says "For".
        self.fields["for_"].help_text = "The condition must hold this long before it fires."

    @classmethod
    def initial_from(cls, rule):
        return {
            "name": rule.name,
            "team": rule.team_id,
            "host": rule.host_id,
            "container": rule.container_id,
            "name_glob": rule.name_glob,
            "metric": rule.metric,
            "op": rule.op,
            "threshold": rule.threshold,
            "window": rules.format_duration(rule.window_seconds),
            "event": rule.event,
            "restart_count": rule.restart_count,
            "restart_window": rules.format_duration(rule.restart_window_seconds),
            "for_": rules.format_duration(rule.for_seconds),
            "repeat": rules.format_duration(rule.repeat_seconds),
            "send_resolved": rule.send_resolved,
            "recipients": "\n".join(rule.recipients),
            "enabled": rule.enabled,
        }

    def data_for_service(self):
        d = self.cleaned_data
        return {
            "name": d["name"].strip(),
            "team": d["team"],
            "host": d["host"],
            "container": d["container"],
            "name_glob": d["name_glob"].strip() or "*",
            "metric": d["metric"],
            "op": d["op"],
            "threshold": d["threshold"],
            "window_seconds": d["window"] or 60,
            "event": d["event"],
            "restart_count": d["restart_count"],
            "restart_window_seconds": d["restart_window"] or 600,
            "for_seconds": d["for_"],
            "repeat_seconds": d["repeat"],
            "send_resolved": d["send_resolved"],
            "recipients": rules.parse_recipients(d["recipients"]),
            "enabled": d["enabled"],
        }


class SilenceForm(forms.Form):
    team = forms.ModelChoiceField(queryset=None, required=False)
    rule = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any rule")
    host = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any host")
    container_glob = forms.CharField(max_length=255, initial="*", label="Container name glob")
    duration = DurationField(initial="2h", label="For (e.g. 30m, 2h, 1d)", required=False)
    ends_at = forms.DateTimeField(
        required=False,
        label="Or until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    comment = forms.CharField(max_length=500)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        admin = access.is_admin(user)
        self.fields["team"].queryset = services.writable_teams(user)
        self.fields["team"].required = not admin
        self.fields["team"].empty_label = "All teams" if admin else None
        self.fields["rule"].queryset = access.restrict(user, AlertRule.objects.all(), "change")
        self.fields["host"].queryset = services.scope_hosts(user)

    def clean(self):
        data = super().clean()
        if data.get("ends_at"):
            data["until"] = data["ends_at"]
        elif data.get("duration"):
            data["until"] = timezone.now() + timedelta(seconds=data["duration"])
        else:
            raise forms.ValidationError("Give a duration or an end time.")
        return data
