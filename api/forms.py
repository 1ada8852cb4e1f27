"""The token form of the API tokens page."""

from django import forms

from dashboard.models import Team

from . import tokens

EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "e.g. ci-deploy", "autofocus": True}),
    )
    days = forms.TypedChoiceField(
        label="Expires after", choices=EXPIRY_CHOICES, coerce=int, initial=tokens.DEFAULT_DAYS
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        required=False,
        empty_label="all my teams",
        label="Only for team",
    )
    read_only = forms.BooleanField(required=False, label="Read-only (no changes)")

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = tokens.allowed_teams(user)
