"""Forms of the images pages. Every choice list is built from what the user may use."""

from django import forms
from django.conf import settings

from dashboard import access
from dashboard.models import Host, Team
from registries.models import Registry

from . import reference


def _hosts(user):
    return access.restrict(user, Host.objects.all(), "create_image")


def _teams(user):
    return access.restrict(user, Team.objects.all(), "create_image")


def usable_registries(user):
    """Registries the user may pull from or push to for at least one of their teams."""
    if access.is_admin(user):
        return Registry.objects.all()
    return access.restrict(user, Registry.objects.all(), "use")


class HostTeamForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.none(), empty_label=None)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["host"].queryset = _hosts(user)
        self.fields["team"].queryset = _teams(user)

    def clean(self):
        data = super().clean()
        host, team = data.get("host"), data.get("team")
        if host and team and not access.is_admin(self.user):
            if not (host.all_teams or host.teams.filter(pk=team.pk).exists()):
                self.add_error("host", f"Host {host} is not open to team {team}.")
        return data


class PullForm(HostTeamForm):
    reference = forms.CharField(
        required=False,
        max_length=512,
        label="Image reference",
        widget=forms.TextInput(attrs={"placeholder": "registry.example.com/team/app:1.0"}),
    )
    registry = forms.ModelChoiceField(
        queryset=Registry.objects.none(),
        required=False,
        empty_label="— or pick a registry —",
        label="Registry",
    )
    repository = forms.CharField(
        required=False, max_length=255, widget=forms.TextInput(attrs={"placeholder": "team/app"})
    )
    tag = forms.CharField(
        required=False, max_length=128, widget=forms.TextInput(attrs={"placeholder": "latest"})
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields["registry"].queryset = usable_registries(user)

    def clean(self):
        data = super().clean()
        if not data.get("registry") and not (data.get("reference") or "").strip():
            raise forms.ValidationError(
                "Give a full image reference, or pick a registry and a repository."
            )
        if data.get("registry") and (data.get("reference") or "").strip():
            raise forms.ValidationError("Give either a reference or a registry, not both.")
        return data


class BuildForm(HostTeamForm):
    tag = forms.CharField(
        max_length=300,
        label="Name and tag",
        widget=forms.TextInput(attrs={"placeholder": "team/app:1.0"}),
    )
    dockerfile_text = forms.CharField(
        required=False,
        label="Dockerfile",
        widget=forms.Textarea(
            attrs={
                "rows": 12,
                "class": "mono",
                "spellcheck": "false",
                "placeholder": "FROM dockyard-test/busybox:latest\nRUN echo hello",
            }
        ),
    )
    context = forms.FileField(
        required=False,
        label="…or a build context (tar, tar.gz or zip)",
        help_text="Its Dockerfile is used, the editor's is ignored.",
    )
    dockerfile = forms.CharField(
        required=False, initial="Dockerfile", max_length=255, label="Dockerfile in the context"
    )
    build_args = forms.CharField(
        required=False,
        label="Build arguments (NAME=value per line)",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
    )
    target = forms.CharField(required=False, max_length=64, label="Target stage")

    def clean_tag(self):
        try:
            return reference.parse(self.cleaned_data["tag"], allow_digest=False).tagged
        except reference.BadReference as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        upload = data.get("context")
        if upload is None and not (data.get("dockerfile_text") or "").strip():
            raise forms.ValidationError("Type a Dockerfile or upload a build context.")
        if upload is not None and upload.size > settings.IMAGE_BUILD_MAX_BYTES:
            self.add_error(
                "context",
                f"The upload is larger than the limit of "
                f"{settings.IMAGE_BUILD_MAX_BYTES // 1_000_000} MB.",
            )
        return data


class ImportForm(HostTeamForm):
    archive = forms.FileField(label="Image archive (from docker save)")


class TagForm(forms.Form):
    target = forms.CharField(
        max_length=300,
        label="New name",
        widget=forms.TextInput(attrs={"placeholder": "registry.example.com/team/app:1.0"}),
    )

    def clean_target(self):
        try:
            return reference.parse(self.cleaned_data["target"], allow_digest=False).tagged
        except reference.BadReference as exc:
            raise forms.ValidationError(str(exc)) from None


class TagChoiceForm(forms.Form):
    """A tag of one image (push, untag)."""

    tag = forms.CharField(max_length=300, required=False)
    force = forms.BooleanField(required=False)


class CopyForm(forms.Form):
    to_host = forms.ModelChoiceField(
        queryset=Host.objects.none(), label="To host", empty_label="— copy to host —"
    )

    def __init__(self, user, image, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_host"].queryset = _hosts(user).exclude(pk=image.host_id)


class ImageFilterForm(forms.Form):
    """The list's query string: junk is ignored (never a 500)."""

    host = forms.IntegerField(required=False, min_value=1, max_value=10**18)
    team = forms.IntegerField(required=False, min_value=1, max_value=10**18)
    q = forms.CharField(required=False, max_length=200)
    dangling = forms.ChoiceField(
        required=False, choices=[("", "all"), ("1", "dangling only"), ("0", "tagged only")]
    )
    shared = forms.BooleanField(required=False)

    def values(self):
        if self.is_valid():
            return self.cleaned_data
        return {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
