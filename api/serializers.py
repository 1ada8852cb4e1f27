"""What the API answers. Only what the pages show the same user; secrets masked the same way."""

from django.urls import reverse
from rest_framework import serializers

from alerts.models import Alert, AlertRule, Silence
from containers.models import Container
from dashboard import access
from dashboard.models import AuditEntry, Host, Job
from images.models import Image
from registries import services as registry_services
from registries.models import Registry
from resources.models import Network, Volume
from stacks.models import Stack


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


# ---------------------------------------------------------------- images


class ImageSerializer(_ResourceSerializer):
    url = serializers.SerializerMethodField()
    name = serializers.CharField(read_only=True, help_text="First tag, or the short id")
    dangling = serializers.BooleanField(read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "url",
            "name",
            "docker_id",
            "host",
            "team",
            "owner",
            "tags",
            "digests",
            "size",
            "created",
            "shared",
            "dangling",
            "created_by_dashboard",
            "actions",
        ]

    def get_url(self, obj) -> str:
        return reverse("api:image", args=[obj.pk])


class ImagePullSerializer(serializers.Serializer):
    """The pull form's fields: a reference, or a registry + repository + tag."""

    host = serializers.CharField(help_text="Host id or name")
    team = serializers.CharField(help_text="Team id or name")
    reference = serializers.CharField(required=False, help_text="e.g. registry:5000/team/app:1.0")
    registry = serializers.CharField(required=False, help_text="Registry id or name")
    repository = serializers.CharField(required=False)
    tag = serializers.CharField(required=False)


class ImageBuildSerializer(serializers.Serializer):
    """The build form's fields; `context` only as multipart/form-data."""

    host = serializers.CharField(help_text="Host id or name")
    team = serializers.CharField(help_text="Team id or name")
    tag = serializers.CharField(help_text="Name and tag of the result, e.g. team/app:1.0")
    dockerfile_text = serializers.CharField(required=False, help_text="The Dockerfile's text")
    context = serializers.FileField(required=False, help_text="A tar, tar.gz or zip context")
    dockerfile = serializers.CharField(required=False, help_text="Dockerfile path in the context")
    build_args = serializers.DictField(
        child=serializers.CharField(), required=False, help_text='{"NAME": "value"}'
    )
    target = serializers.CharField(required=False, help_text="Target stage")


class ImageTagSerializer(serializers.Serializer):
    target = serializers.CharField(help_text="The new name, repository:tag")


class ImageTagChoiceSerializer(serializers.Serializer):
    tag = serializers.CharField(max_length=300, help_text="One of the image's tags")


class PruneSerializer(serializers.Serializer):
    host = serializers.IntegerField(min_value=1, max_value=10**18, help_text="Host id")


# ---------------------------------------------------------------- registries


class RegistrySerializer(serializers.ModelSerializer):
    """A registry as its page shows it: never the password, only whether one is stored."""

    has_password = serializers.BooleanField(read_only=True)
    teams = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    class Meta:
        model = Registry
        fields = [
            "id",
            "name",
            "url",
            "username",
            "has_password",
            "tls_verify",
            "all_teams",
            "teams",
            "last_checked",
            "last_error",
            "actions",
        ]

    def get_teams(self, obj) -> list[str]:
        return sorted(t.name for t in obj.teams.all())

    def get_actions(self, obj) -> list[str]:
        return sorted(registry_services.allowed_actions(self.context["request"].user, obj))


class LoginCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


class RegistryPageSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.CharField())
    next_last = serializers.CharField(help_text="Pass as ?last= for the next page; empty: none")


class PlatformSerializer(serializers.Serializer):
    os = serializers.CharField()
    architecture = serializers.CharField()
    variant = serializers.CharField()
    digest = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)


class TagInfoSerializer(serializers.Serializer):
    tag = serializers.CharField()
    digest = serializers.CharField()
    kind = serializers.CharField()
    media_type = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField(allow_null=True)
    platforms = PlatformSerializer(many=True)
    error = serializers.CharField()


class RegistryTagsSerializer(serializers.Serializer):
    repository = serializers.CharField()
    tags = TagInfoSerializer(many=True)
    next_last = serializers.CharField()


class RegistryTagDeleteSerializer(serializers.Serializer):
    repository = serializers.CharField(max_length=255)
    tag = serializers.CharField(max_length=128)
    digest = serializers.CharField(max_length=100, help_text="The digest you saw (sha256:…)")


# ---------------------------------------------------------------- alerts and stats


class AlertRuleSerializer(serializers.ModelSerializer):
    team = serializers.SerializerMethodField()
    host = serializers.SerializerMethodField()
    container = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "team",
            "host",
            "container",
            "name_glob",
            "metric",
            "op",
            "threshold",
            "window_seconds",
            "event",
            "restart_count",
            "restart_window_seconds",
            "for_seconds",
            "repeat_seconds",
            "send_resolved",
            "recipients",
            "enabled",
            "source",
            "created_at",
            "updated_at",
            "actions",
        ]

    def get_team(self, obj) -> str | None:
        return _name(obj.team)

    def get_host(self, obj) -> dict | None:
        return {"id": obj.host_id, "name": obj.host.name} if obj.host_id else None

    def get_container(self, obj) -> dict | None:
        if not obj.container_id:
            return None
        return {"id": obj.container_id, "name": obj.container.name}

    def get_actions(self, obj) -> list[str]:
        return sorted(access.allowed_actions(self.context["request"].user, obj))


class AlertRuleInputSerializer(serializers.Serializer):
    """The rule form's fields (durations as text: 30s, 5m, 2h, 1d)."""

    name = serializers.CharField()
    team = serializers.CharField(required=False, help_text="Team id or name")
    host = serializers.CharField(required=False, help_text="Host id or name")
    container = serializers.CharField(required=False, help_text="Container id or name")
    name_glob = serializers.CharField(required=False)
    metric = serializers.CharField(required=False)
    op = serializers.CharField(required=False)
    threshold = serializers.FloatField(required=False)
    window = serializers.CharField(required=False)
    event = serializers.CharField(required=False)
    restart_count = serializers.IntegerField(required=False)
    restart_window = serializers.CharField(required=False)
    for_ = serializers.CharField(required=False)
    repeat = serializers.CharField(required=False)
    send_resolved = serializers.BooleanField(required=False)
    recipients = serializers.ListField(child=serializers.EmailField())
    enabled = serializers.BooleanField(required=False)


class SilenceSerializer(serializers.ModelSerializer):
    team = serializers.SerializerMethodField()
    rule = serializers.SerializerMethodField()
    host = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = Silence
        fields = [
            "id",
            "team",
            "rule",
            "host",
            "container_glob",
            "comment",
            "starts_at",
            "ends_at",
            "active",
            "created_by",
            "created_at",
        ]

    def get_team(self, obj) -> str | None:
        return _name(obj.team)

    def get_rule(self, obj) -> str | None:
        return _name(obj.rule)

    def get_host(self, obj) -> str | None:
        return _name(obj.host)

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None


class SilenceInputSerializer(serializers.Serializer):
    team = serializers.CharField(required=False, help_text="Team id or name")
    rule = serializers.CharField(required=False, help_text="Rule id or name")
    host = serializers.CharField(required=False, help_text="Host id or name")
    container_glob = serializers.CharField(required=False)
    duration = serializers.CharField(required=False, help_text="e.g. 30m, 2h, 1d")
    ends_at = serializers.DateTimeField(required=False)
    comment = serializers.CharField()


class AlertSerializer(serializers.ModelSerializer):
    """An alert (no recipients: the page shows them only to readers of the rule)."""

    team = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule_name",
            "team",
            "container_id",
            "container_name",
            "host_id",
            "host_name",
            "condition",
            "value",
            "threshold",
            "detail",
            "since",
            "fired_at",
            "resolved_at",
            "end_reason",
            "silenced",
        ]

    def get_team(self, obj) -> str | None:
        return _name(obj.rule_team)


class StatsSeriesSerializer(serializers.Serializer):
    range = serializers.CharField()
    step = serializers.IntegerField(allow_null=True, help_text="Seconds per point (rollups)")
    t = serializers.ListField(child=serializers.IntegerField(), help_text="Unix seconds")
    cpu_percent = serializers.ListField(child=serializers.FloatField(allow_null=True))
    mem_bytes = serializers.ListField(child=serializers.IntegerField(allow_null=True))


class StackSerializer(_ResourceSerializer):
    """A stack as the Stacks list shows it (the detail adds services and versions)."""

    version = serializers.SerializerMethodField()

    def get_version(self, obj) -> int | None:
        return obj.current_version.number if obj.current_version_id else None

    class Meta:
        model = Stack
        fields = [
            "id",
            "name",
            "host",
            "team",
            "owner",
            "source",
            "project",
            "version",
            "created_at",
            "actions",
        ]


class StackCreateSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Host id or name")
    team = serializers.CharField(help_text="Team id or name")
    name = serializers.CharField()
    compose = serializers.CharField(help_text="The compose file's text")
    env = serializers.CharField(required=False, help_text="KEY=value lines, or an object")


class StackDeploySerializer(serializers.Serializer):
    compose = serializers.CharField(
        required=False, help_text="A new compose file: a new version, then deployed"
    )
    env = serializers.CharField(required=False, help_text="With compose: the new env file")
    note = serializers.CharField(required=False, help_text="What changed")


class StackScaleSerializer(serializers.Serializer):
    service = serializers.CharField()
    replicas = serializers.IntegerField(min_value=0, max_value=50)


class StackDownSerializer(serializers.Serializer):
    volumes = serializers.BooleanField(required=False, help_text="Also remove its volumes")
