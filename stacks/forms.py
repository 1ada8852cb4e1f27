"""Forms for stacks: choices come from what the user may use (hosts, teams, registries)."""

from django import forms

from dashboard import access
from dashboard.models import Host, Team
from registries.models import Registry
from registries.services import registries_for

from .models import Stack

EDITOR = {"rows": 18, "spellcheck": "false", "class": "mono"}
SMALL = {"rows": 4, "spellcheck": "false", "class": "mono"}


class _HostTeamForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.none(), empty_label=None)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["host"].queryset = access.restrict(user, Host.objects.all(), "create_container")
        self.fields["team"].queryset = access.creatable_teams(user)


class StackForm(_HostTeamForm):
    name = forms.CharField(
        max_length=64, widget=forms.TextInput(attrs={"placeholder": "e.g. shop"})
    )
    source = forms.ChoiceField(
        choices=[(Stack.Source.EDITOR, "Compose file"), (Stack.Source.GIT, "Git repository")],
        widget=forms.RadioSelect,
        initial=Stack.Source.EDITOR,
    )
    compose = forms.CharField(
        required=False,
        label="Compose file",
        max_length=256 * 1024,
        strip=False,
        widget=forms.Textarea(
            attrs={
                **EDITOR,
                "placeholder": 'services:\n  web:\n    image: nginx:1.27\n    ports: ["8080:80"]',
            }
        ),
    )
    env = forms.CharField(
        required=False,
        label="Env file",
        max_length=64 * 1024,
        strip=False,
        widget=forms.Textarea(
            attrs={**SMALL, "placeholder": "KEY=value, one per line (used for ${KEY} in the file)"}
        ),
    )
    git_url = forms.CharField(required=False, max_length=500, label="Repository URL")
    git_branch = forms.CharField(required=False, max_length=200, initial="main", label="Branch")
    git_path = forms.CharField(
        required=False, max_length=300, initial="compose.yaml", label="Compose file path"
    )
    git_username = forms.CharField(required=False, max_length=200, label="Username (optional)")
    git_password = forms.CharField(
        required=False,
        max_length=1000,
        label="Password or token (optional, stored encrypted)",
        widget=forms.PasswordInput(render_value=False),
    )
    registry = forms.ModelChoiceField(
        queryset=Registry.objects.none(),
        required=False,
        label="Push built images to (optional)",
        help_text="On a webhook deploy, services with build: are built and pushed there",
    )
    poll_minutes = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=1440,
        initial=0,
        label="Poll the branch every N minutes (0 = off)",
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        teams = list(self.fields["team"].queryset)
        usable = set()
        for team in teams:
            usable.update(registries_for(user, team).values_list("pk", flat=True))
        self.fields["registry"].queryset = Registry.objects.filter(pk__in=usable)

    def clean(self):
        data = super().clean()
        if data.get("source") == Stack.Source.EDITOR and not (data.get("compose") or "").strip():
            self.add_error("compose", "Type or paste a compose file.")
        if data.get("source") == Stack.Source.GIT and not (data.get("git_url") or "").strip():
            self.add_error("git_url", "Give the repository's URL.")
        return data


class EditForm(forms.Form):
    compose = forms.CharField(
        label="Compose file",
        max_length=256 * 1024,
        strip=False,
        widget=forms.Textarea(attrs=EDITOR),
    )
    env = forms.CharField(
        required=False,
        label="Env file",
        max_length=64 * 1024,
        strip=False,
        widget=forms.Textarea(attrs=SMALL),
    )
    note = forms.CharField(required=False, max_length=255, label="What changed (optional)")


class TemplateDeployForm(_HostTeamForm):
    name = forms.CharField(max_length=64)

    def __init__(self, user, template, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.template = template
        for var in template["variables"]:
            kind = var.get("kind", "text")
            help_text = "left empty, a random one is generated" if kind == "password" else ""
            self.fields[f"var_{var['name']}"] = forms.CharField(
                required=False,
                max_length=500,
                label=var["label"],
                initial=var.get("default", "") if kind != "password" else "",
                help_text=help_text,
                widget=forms.PasswordInput if kind == "password" else forms.TextInput,
            )

    def values(self):
        return {
            var["name"]: self.cleaned_data.get(f"var_{var['name']}", "")
            for var in self.template["variables"]
        }
