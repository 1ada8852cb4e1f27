"""Forms for hosts, teams and memberships (admin pages)."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from . import access
from .models import AuditEntry, Host, Membership, Role, Team


class ModelIdsField(forms.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField whose junk ids are "not a valid choice", never a 500.

    Django looks each posted value up as it is: an id past the database's integer
    range (99999999999999999999999) or a non-ASCII digit (²) escapes its checks as
    an OverflowError or a database error.
    """

    def _check_values(self, value):
        for pk in value:
            text = str(pk)
            if not (text.isascii() and text.isdigit() and 0 < len(text) <= 18):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": text[:40]},
                )
        return super()._check_values(value)


class HostForm(forms.ModelForm):
    """A host: its URL, who may use it, and how it is reached.

    unix:// takes no TLS (the fields are emptied). tcp:// must be protected both ways
    (the engine's certificate verified, a client certificate presented) unless
    `insecure` is ticked: plain tcp://, TLS without a client certificate and an
    unverified engine certificate each leave the engine to whoever is on the network.
    The engine layer (dashboard/engine.py) refuses the same hosts on its own.
    """

    tls_client_key = forms.CharField(
        required=False,
        label="TLS client key",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "PEM; left blank keeps the stored key"}
        ),
        help_text="The key of the client certificate (its cert.key / key.pem). Stored encrypted.",
    )

    class Meta:
        model = Host
        field_classes = {"teams": ModelIdsField}
        fields = [
            "name",
            "url",
            "all_teams",
            "teams",
            "tls_ca_cert",
            "tls_client_cert",
            "tls_verify",
            "insecure",
        ]
        labels = {
            "all_teams": "Open to every team",
            "teams": "Teams that may use this host",
            "url": "Engine URL",
            "tls_ca_cert": "TLS CA certificate",
            "tls_client_cert": "TLS client certificate",
            "tls_verify": "Verify the engine's certificate",
            "insecure": "Insecure: allow this tcp:// engine without full TLS",
        }
        help_texts = {
            "tls_ca_cert": (
                "The CA that signed the engine's certificate (the engine's ca.pem). "
                "Blank: this machine's trusted CAs are used."
            ),
            "tls_client_cert": (
                "A certificate for the dashboard, signed by the CA the engine trusts "
                "(its --tlscacert), with the clientAuth usage (the client's cert.pem)."
            ),
            "all_teams": "Every team's members may use it, each by their role.",
            "tls_verify": (
                "Off needs Insecure: anyone on the network path could then pose as the engine."
            ),
            "insecure": (
                "Needed for tcp:// without a client certificate or without verification: "
                "anyone who can reach the engine's port then controls the engine, and "
                "root on its machine."
            ),
        }
        widgets = {
            "url": forms.TextInput(attrs={"placeholder": "e.g. unix:///var/run/docker.sock"}),
            "name": forms.TextInput(attrs={"placeholder": "e.g. build-01"}),
            "tls_ca_cert": forms.Textarea(
                attrs={"rows": 3, "placeholder": "-----BEGIN CERTIFICATE-----"}
            ),
            "tls_client_cert": forms.Textarea(
                attrs={"rows": 3, "placeholder": "-----BEGIN CERTIFICATE-----"}
            ),
            "teams": forms.CheckboxSelectMultiple,
        }

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if not (url.startswith("unix:///") or url.startswith("tcp://")):
            raise forms.ValidationError(
                "Use a unix:/// or tcp:// URL, e.g. unix:///var/run/docker.sock "
                "or tcp://10.0.0.5:2376."
            )
        if url.startswith("tcp://"):
            rest = url[len("tcp://") :]
            host, _, port = rest.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise forms.ValidationError(
                    "A tcp:// URL needs host:port, e.g. tcp://10.0.0.5:2376."
                )
        return url

    def clean(self):
        data = super().clean()
        url = data.get("url") or ""
        if url.startswith("unix://"):
            # A local socket takes no TLS: nothing is kept that would suggest otherwise.
            data.update(tls_ca_cert="", tls_client_cert="", tls_client_key="", tls_verify=True)
            return data
        cert, key = data.get("tls_client_cert"), data.get("tls_client_key")
        has_key = bool(key) or bool(self.instance.tls_client_key_encrypted)
        if cert and not has_key:
            self.add_error("tls_client_key", "A client certificate needs its key.")
        if key and not cert:
            self.add_error("tls_client_cert", "A client key needs its certificate.")
        for field in ("tls_ca_cert", "tls_client_cert", "tls_client_key"):
            value = data.get(field)
            if value and "-----BEGIN" not in value:
                self.add_error(field, "Paste the PEM text, starting with -----BEGIN.")
        if url.startswith("tcp://") and not data.get("insecure"):
            if not cert and not data.get("tls_ca_cert"):
                self.add_error(
                    "insecure",
                    "A tcp:// engine without TLS lets anyone who can reach its port control "
                    "it (root on that machine). Paste the engine's CA and a client "
                    "certificate with its key, or tick Insecure if that is really what "
                    "you want.",
                )
            elif not cert:
                self.add_error(
                    "insecure",
                    "Without a client certificate the dashboard can only reach an engine "
                    "that lets anyone who reaches its port in. Add a client certificate "
                    "with its key, or tick Insecure if that is really what you want.",
                )
            if not data.get("tls_verify"):
                self.add_error(
                    "tls_verify",
                    "Without verifying the engine's certificate anyone on the network "
                    "path can pose as the engine. Paste the CA that signed it (or leave "
                    "the CA blank for this machine's trusted CAs), or tick Insecure.",
                )
        return data

    def save(self, commit=True):
        host = super().save(commit=False)
        if host.url.startswith("unix://"):
            host.tls_client_key_encrypted = ""
        if commit:
            host.save()
            self.save_m2m()
        return host


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "description"]


class MembershipForm(forms.Form):
    # A username, not a list of every account: team admins must not browse all users.
    user = forms.CharField(
        max_length=150,
        label="Username",
        widget=forms.TextInput(attrs={"placeholder": "e.g. alice", "autocomplete": "off"}),
    )
    role = forms.ChoiceField(choices=Role.choices)

    def clean_user(self):
        name = self.cleaned_data["user"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user named {name!r}.")
        return user


class MembershipRoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


class UserForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
    dashboard_admin = forms.BooleanField(
        required=False,
        label="Dashboard admin (hosts, users and every team)",
    )

    def clean_username(self):
        name = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError("That username is taken.")
        return name


class AuditFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    user = forms.CharField(required=False)
    action = forms.CharField(required=False)
    host = forms.ModelChoiceField(
        queryset=Host.objects.all(), required=False, empty_label="any host"
    )
    result = forms.ChoiceField(
        choices=[("", "any result"), *AuditEntry.Result.choices], required=False
    )

    def __init__(self, data, user):
        super().__init__(data)
        self.fields["host"].queryset = access.restrict(user, Host.objects.all(), "view")

    def filter(self, entries):
        """`entries` narrowed by the valid filters (the audit page and the API share it)."""
        if not self.is_valid():
            return entries
        data = self.cleaned_data
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
