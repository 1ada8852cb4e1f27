from django import forms

from dashboard.forms import ModelIdsField
from dashboard.models import Team

from .services import RegistryInputError, normalize_url


class RegistryForm(forms.Form):
    """A registry's settings. The password is never rendered back: blank keeps it."""

    name = forms.CharField(max_length=64)
    url = forms.CharField(
        max_length=255,
        label="Address",
        help_text=(
            "registry.example.com[:port], or a URL with http:// or https://. Without a scheme: "
            "https, except 127.0.0.1/localhost (plain HTTP)."
        ),
    )
    username = forms.CharField(max_length=255, required=False, label="User name")
    password = forms.CharField(
        required=False,
        label="Password or token",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Left blank: the stored one is kept.",
    )
    clear_password = forms.BooleanField(required=False, label="Forget the stored password")
    all_teams = forms.BooleanField(required=False, label="Usable by every team")
    teams = ModelIdsField(
        queryset=Team.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Teams that may use this registry",
    )
    tls_verify = forms.BooleanField(
        required=False, initial=True, label="Verify the registry's TLS certificate"
    )
    ca_cert = forms.CharField(
        required=False,
        label="CA certificate",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "PEM; blank: this machine's CAs"}),
        help_text="The CA that signed the registry's certificate, if it is a private one.",
    )

    def __init__(self, *args, registry=None, **kwargs):
        self.registry = registry
        if registry is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": registry.name,
                "url": registry.url,
                "username": registry.username,
                "all_teams": registry.all_teams,
                "teams": list(registry.teams.all()),
                "tls_verify": registry.tls_verify,
                "ca_cert": registry.ca_cert,
            }
        super().__init__(*args, **kwargs)
        if registry is None:
            del self.fields["clear_password"]
            self.fields["password"].help_text = "Stored encrypted and never shown again."

    def clean_url(self):
        try:
            return normalize_url(self.cleaned_data["url"])
        except RegistryInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_ca_cert(self):
        pem = self.cleaned_data["ca_cert"].strip()
        if pem and "-----BEGIN CERTIFICATE-----" not in pem:
            raise forms.ValidationError("Paste a PEM certificate (-----BEGIN CERTIFICATE-----).")
        if pem:
            from cryptography import x509

            try:
                x509.load_pem_x509_certificates(pem.encode())
            except ValueError:
                raise forms.ValidationError("This PEM certificate cannot be read.") from None
        return pem

    def password_to_store(self):
        """None keeps the stored password; "" forgets it; else the new one."""
        if self.cleaned_data.get("clear_password"):
            return ""
        typed = self.cleaned_data.get("password") or ""
        if typed:
            return typed
        return None if self.registry is not None else ""
