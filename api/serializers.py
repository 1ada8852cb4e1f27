"""What the API answers. Only what the pages show the same user; secrets masked the same way."""

from django.urls import reverse
from rest_framework import serializers

from containers.models import Container
from dashboard import access
from dashboard.models import AuditEntry, Host, Job
from resources.models import Network, Volume


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "url",
            "state",
            "last_error",
            "last_checked",
            "engine_version",
            "api_version",
            "all_teams",
        ]


def _name(obj):
    return obj.name if obj is not None else None


class ContainerSerializer(serializers.ModelSerializer):
    host = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Container
        fields = [
            "id",
            "url",
            "name",
            "docker_id",
            "host",
            "team",
            "owner",
            "image",
            "state",
            "status",
            "health",
            "exit_code",
            "ports",
            "created",
            "removed_at",
            "actions",
        ]

    def get_host(self, obj) -> dict:
        return {"id": obj.host_id, "name": obj.host.name}

    def get_team(self, obj) -> str | None:
        return _name(obj.team)

    def get_owner(self, obj) -> str | None:
        return obj.owner.get_username() if obj.owner else None

    def get_actions(self, obj) -> list[str]:
        """What the requester may do to it (as the page's buttons), token limits included."""
        return sorted(access.allowed_actions(self.context["request"].user, obj))

    def get_url(self, obj) -> str:
        return reverse("api:container", args=[obj.pk])


class EnvVarSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField(help_text="Masked (••••) for viewers and for credentials")
    masked = serializers.BooleanField()


class InspectSerializer(serializers.Serializer):
    """The detail page's inspect summary (containers.inspect.summarize), masked as there."""

    image_id = serializers.CharField()
    entrypoint = serializers.CharField()
    command = serializers.CharField()
    state = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    oom_killed = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    health = serializers.CharField()
    restart_count = serializers.IntegerField()
    ports = serializers.ListField(child=serializers.CharField())
    mounts = serializers.ListField(child=serializers.DictField())
    networks = serializers.ListField(child=serializers.DictField())
    env = EnvVarSerializer(many=True)
    labels = serializers.DictField(child=serializers.CharField())
    restart_policy = serializers.CharField()
    memory_limit = serializers.IntegerField()
    cpus = serializers.FloatField()
    privileged = serializers.BooleanField()
    network_mode = serializers.CharField()

    def to_representation(self, summary):
        summary = dict(summary)
        summary["env"] = [
            {"key": k, "value": v, "masked": masked} for k, v, masked in summary.get("env", [])
        ]
        summary["labels"] = dict(summary.get("labels", []))
        return super().to_representation(summary)


class ContainerDetailSerializer(ContainerSerializer):
    inspect = serializers.SerializerMethodField()
    engine_error = serializers.SerializerMethodField()

    class Meta(ContainerSerializer.Meta):
        fields = [*ContainerSerializer.Meta.fields, "inspect", "engine_error"]

    def get_inspect(self, obj) -> InspectSerializer(allow_null=True):  # type: ignore[valid-type]
        summary = self.context.get("summary")
        return InspectSerializer(summary).data if summary else None

    def get_engine_error(self, obj) -> str:
        return self.context.get("engine_error", "")


class ContainerCreateSerializer(serializers.Serializer):
    """The create form's fields (the same form and policy check the values)."""

    host = serializers.CharField(help_text="Host id or name")
    team = serializers.CharField(help_text="Team id or name")
    image = serializers.CharField()
    name = serializers.CharField(required=False)
    command = serializers.CharField(required=False, help_text="As a shell would split it")
    env = serializers.JSONField(
        required=False, help_text='{"KEY": "value"}, ["KEY=value"] or "KEY=value" lines'
    )
    ports = serializers.JSONField(required=False, help_text='["8080:80", "127.0.0.1:53:53/udp"]')
    volumes = serializers.JSONField(required=False, help_text='["data:/var/lib/data"]')
    labels = serializers.JSONField(required=False, help_text='{"key": "value"}')
    restart = serializers.ChoiceField(
        choices=["no", "always", "unless-stopped", "on-failure"], required=False
    )
    memory = serializers.CharField(required=False, help_text="e.g. 256m")
    cpus = serializers.CharField(required=False, help_text="e.g. 0.5")
    network = serializers.CharField(required=False, help_text="One of the team's networks")
    privileged = serializers.BooleanField(required=False, help_text="Dashboard admins only")
    cap_add = serializers.CharField(required=False, help_text="Dashboard admins only")
    devices = serializers.CharField(required=False, help_text="Dashboard admins only")
    security_opt = serializers.CharField(required=False, help_text="Dashboard admins only")
    pid_mode = serializers.CharField(required=False, help_text="Dashboard admins only")
    ipc_mode = serializers.CharField(required=False, help_text="Dashboard admins only")


class ActionSerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, help_text="remove: also a running one")
    volumes = serializers.BooleanField(required=False, help_text="remove: its anonymous volumes")


class _ResourceSerializer(serializers.ModelSerializer):
    host = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    def get_host(self, obj) -> dict:
        return {"id": obj.host_id, "name": obj.host.name}

    def get_team(self, obj) -> str | None:
        return _name(obj.team)

    def get_owner(self, obj) -> str | None:
        return obj.owner.get_username() if obj.owner else None

    def get_actions(self, obj) -> list[str]:
        return sorted(access.allowed_actions(self.context["request"].user, obj))


RESOURCE_FIELDS = [
    "id",
    "name",
    "host",
    "team",
    "owner",
    "driver",
    "created",
    "created_by_dashboard",
]


class VolumeSerializer(_ResourceSerializer):
    class Meta:
        model = Volume
        fields = [*RESOURCE_FIELDS, "actions"]


class NetworkSerializer(_ResourceSerializer):
    class Meta:
        model = Network
        fields = [*RESOURCE_FIELDS, "docker_id", "scope", "internal", "actions"]


class ResourceCreateSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Host id or name")
    team = serializers.CharField(help_text="Team id or name")
    name = serializers.CharField()


class NetworkCreateSerializer(ResourceCreateSerializer):
    internal = serializers.BooleanField(required=False)


class AuditEntrySerializer(serializers.ModelSerializer):
    via_token = serializers.CharField(
        source="api_token_name", help_text="The API token the action came through, if any"
    )
    team = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "username",
            "via_token",
            "source_ip",
            "host_name",
            "team",
            "action",
            "target_type",
            "target_id",
            "target_name",
            "params",
            "result",
            "message",
            "completed_at",
            "job_id",
        ]

    def get_team(self, obj) -> str | None:
        return _name(obj.team) if obj.team_id else None


class JobSerializer(serializers.ModelSerializer):
    """A job's status and output; never its parameters (they may name secrets' keys)."""

    host = serializers.SerializerMethodField()
    container = serializers.SerializerMethodField()
    verb = serializers.CharField()
    done = serializers.BooleanField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "verb",
            "status",
            "done",
            "target",
            "host",
            "container",
            "message",
            "output",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_host(self, obj) -> str | None:
        return _name(obj.host)

    def get_container(self, obj) -> str | None:
        """The container's API URL, if the requester may see it."""
        if obj.container_id is None:
            return None
        user = self.context["request"].user
        if not access.restrict(user, Container.objects.filter(pk=obj.container_id)).exists():
            return None
        return reverse("api:container", args=[obj.container_id])

    def get_url(self, obj) -> str:
        return reverse("api:job", args=[obj.pk])


class TokenOwnSerializer(serializers.Serializer):
    """Who the request is: the token's user and the token's limits."""

    username = serializers.CharField()
    dashboard_admin = serializers.BooleanField()
    token = serializers.DictField(allow_null=True)
