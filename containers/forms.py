"""Forms for containers. The create form applies the create policy server-side."""

from django import forms

from dashboard import access
from dashboard.engine import EngineError, HostUnreachable
from dashboard.forms import ModelIdsField
from dashboard.models import Host, Team
from images.services import use as image_use
from resources import services as resource_services

from . import policy
from .models import Container

TEXTAREA = {"rows": 3, "spellcheck": "false"}


class CreateContainerForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.none(), empty_label=None)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    image = forms.CharField(
        max_length=512,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. nginx:1.27", "autofocus": True, "spellcheck": "false"}
        ),
    )
    name = forms.CharField(
        max_length=128,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. web-1 (optional)"}),
    )
    command = forms.CharField(
        max_length=4000,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. sh -c 'echo hello; sleep 3600' (optional)"}
        ),
    )
    env = forms.CharField(
        required=False,
        label="Environment",
        widget=forms.Textarea(attrs={**TEXTAREA, "placeholder": "KEY=value, one per line"}),
    )
    ports = forms.CharField(
        required=False,
        label="Published ports",
        widget=forms.Textarea(
            attrs={**TEXTAREA, "placeholder": "e.g.\n8080:80\n127.0.0.1:5353:53/udp"}
        ),
    )
    volumes = forms.CharField(
        required=False,
        label="Volumes",
        widget=forms.Textarea(
            attrs={**TEXTAREA, "placeholder": "e.g.\ndata:/var/lib/data\ncache:/cache:ro"}
        ),
    )
    restart = forms.ChoiceField(
        label="Restart policy",
        choices=[
            ("no", "no"),
            ("always", "always"),
            ("unless-stopped", "unless-stopped"),
            ("on-failure", "on-failure"),
        ],
        initial="no",
    )
    memory = forms.CharField(
        max_length=16,
        required=False,
        label="Memory limit",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 256m (none)"}),
    )
    cpus = forms.CharField(
        max_length=16,
        required=False,
        label="CPU limit",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 0.5 (none)"}),
    )
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**TEXTAREA, "placeholder": "key=value, one per line"}),
    )
    network = forms.CharField(
        max_length=128,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "default bridge"}),
    )
    # Admin-only options: shown to admins, refused for others even when posted by hand.
    privileged = forms.BooleanField(required=False, label="Privileged mode")
    cap_add = forms.CharField(
        required=False,
        label="Add capabilities",
        widget=forms.TextInput(attrs={"placeholder": "NET_ADMIN SYS_TIME"}),
    )
    devices = forms.CharField(
        required=False, label="Devices", widget=forms.TextInput(attrs={"placeholder": "/dev/fuse"})
    )
    security_opt = forms.CharField(
        required=False,
        label="Security options",
        widget=forms.TextInput(attrs={"placeholder": "seccomp=unconfined"}),
    )
    pid_mode = forms.CharField(
        required=False, label="PID namespace", widget=forms.TextInput(attrs={"placeholder": "host"})
    )
    ipc_mode = forms.CharField(
        required=False, label="IPC namespace", widget=forms.TextInput(attrs={"placeholder": "host"})
    )

    ADMIN_FIELDS = ("privileged", "cap_add", "devices", "security_opt", "pid_mode", "ipc_mode")

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.admin = access.is_admin(user)
        self.fields["host"].queryset = access.restrict(user, Host.objects.all(), "create_container")
        self.fields["team"].queryset = access.creatable_teams(user)
        if not self.admin:
            for name in self.ADMIN_FIELDS:
                del self.fields[name]
        self.spec = None

    def admin_fields(self):
        return [self[name] for name in self.ADMIN_FIELDS if name in self.fields]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        raw = self.data
        try:
            if not self.admin:
                policy.refuse_privileged(raw)
            team = data["team"]
            volumes, binds = policy.parse_volumes(data.get("volumes"), allow_host_paths=self.admin)
            spec = {
                "image": policy.parse_image(data.get("image")),
                "name": policy.parse_name(data.get("name")),
                "command": policy.parse_command(data.get("command")),
                "env": policy.parse_env(data.get("env")),
                "ports": policy.parse_ports(data.get("ports")),
                "volumes": volumes,
                "binds": binds,
                "restart": policy.parse_restart(data.get("restart")),
                "memory": policy.parse_memory(data.get("memory")),
                "nano_cpus": policy.parse_cpus(data.get("cpus")),
                "labels": policy.parse_labels(data.get("labels")),
            }
            if self.admin:
                spec["privileged"] = policy.parse_privileged(raw)
            host = data["host"]
            if not self.admin and not (host.all_teams or host.teams.filter(pk=team.pk).exists()):
                raise policy.PolicyError("host", f"Host {host} is not open to team {team}.")
            if host.is_reachable or host.state == Host.State.UNKNOWN:
                # Ownership of what the container would mount or join, against the engine now.
                resource_services.check_volumes(self.user, host, team, [v["name"] for v in volumes])
                if not self.admin:
                    # Early feedback; the worker checks again at run time.
                    state = host.state
                    try:
                        image_use.check_on_host(host, team, spec["image"], admin=False)
                    except HostUnreachable:
                        # A host never checked yet goes through as before: the job
                        # tries it and says why it failed (it re-checks the image).
                        if state != Host.State.UNKNOWN:
                            raise
                        host.state = state
                spec["network"], spec["network_id"] = resource_services.resolve_network(
                    self.user, host, team, data.get("network")
                )
        except policy.PolicyError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
            return data
        except EngineError as exc:
            self.add_error("host", exc.message)
            return data
        name = spec["name"]
        if name and Container.objects.present().filter(host=host, name=name).exists():
            # Say "exists" only of a container the user can see: no oracle for the others.
            visible = access.restrict(self.user, Container.objects.present(), "view")
            if visible.filter(host=host, name=name).exists():
                self.add_error("name", f"A container named {name!r} already exists on {host}.")
            else:
                self.add_error(
                    "name", f"The name {name!r} cannot be used on {host}; choose another."
                )
        if not host.is_reachable and host.state != Host.State.UNKNOWN:
            self.add_error("host", f"Host {host} is unreachable: {host.last_error}")
        self.spec = {k: v for k, v in spec.items() if v not in (None, "", [], {})}
        self.spec.setdefault("image", spec["image"])
        return data


class AssignTeamForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, empty_label="— no team (admins only) —"
    )


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[(a, a) for a in ("start", "stop", "restart", "kill", "pause", "unpause", "remove")]
    )
    ids = ModelIdsField(queryset=Container.objects.none())
    force = forms.BooleanField(required=False)
    volumes = forms.BooleanField(required=False)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only what the user can see; an id outside it is "not a valid choice".
        self.fields["ids"].queryset = access.restrict(user, Container.objects.present(), "view")
