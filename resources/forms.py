"""Forms for volumes and networks."""

from django import forms

from containers.policy import VOLUME_NAME_RE
from dashboard import access
from dashboard.models import Host, Team


class CreateForm(forms.Form):
    """A new volume or network for a team on a host the team may use."""

    host = forms.ModelChoiceField(queryset=Host.objects.none(), empty_label=None)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    name = forms.CharField(
        max_length=128, widget=forms.TextInput(attrs={"placeholder": "e.g. web-data"})
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["host"].queryset = access.restrict(user, Host.objects.all(), "create_container")
        self.fields["team"].queryset = access.creatable_teams(user)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not VOLUME_NAME_RE.match(name):
            raise forms.ValidationError(
                "Use letters, digits, '_', '.' and '-', starting with a letter or digit."
            )
        return name

    def clean(self):
        data = super().clean()
        host, team = data.get("host"), data.get("team")
        if host and team and not access.is_admin(self.user):
            if not (host.all_teams or host.teams.filter(pk=team.pk).exists()):
                self.add_error("host", f"Host {host} is not open to team {team}.")
        return data


class NetworkCreateForm(CreateForm):
    internal = forms.BooleanField(required=False, label="Internal (no access to the outside world)")
