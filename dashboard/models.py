"""Hosts, teams, memberships, jobs and the audit log."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from containers.inspect import mask_credentials

from . import crypto


class Host(models.Model):
    """A Docker engine the dashboard manages, reached by unix:// socket or tcp://."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        REACHABLE = "reachable", "Reachable"
        UNREACHABLE = "unreachable", "Unreachable"

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(
        max_length=255, help_text="unix:///var/run/docker.sock or tcp://host:2376"
    )
    tls_ca_cert = models.TextField(blank=True, help_text="PEM; for tcp:// with TLS")
    tls_client_cert = models.TextField(blank=True, help_text="PEM client certificate")
    tls_client_key_encrypted = models.TextField(blank=True, editable=False)
    tls_verify = models.BooleanField(default=True)
    # tcp:// without TLS exposes root on the engine to the network: only on purpose.
    insecure = models.BooleanField(
        default=False, help_text="Allow tcp:// without TLS (anyone on the network can use it)"
    )
    # Which teams may see and use the host (dashboard admins see every host).
    all_teams = models.BooleanField(default=False, help_text="Open to every team")
    teams = models.ManyToManyField("Team", blank=True, related_name="hosts")
    state = models.CharField(max_length=16, choices=State, default=State.UNKNOWN)
    last_error = models.TextField(blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)
    # When the container mirror last matched the engine's full list.
    last_synced = models.DateTimeField(null=True, blank=True)
    engine_version = models.CharField(max_length=64, blank=True)
    api_version = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def tls_client_key(self):
        return crypto.decrypt(self.tls_client_key_encrypted)

    @tls_client_key.setter
    def tls_client_key(self, value):
        self.tls_client_key_encrypted = crypto.encrypt(value)

    @property
    def uses_tls(self):
        return bool(self.tls_client_cert or self.tls_ca_cert)

    @property
    def is_reachable(self):
        return self.state == self.State.REACHABLE


class Team(models.Model):
    """A group of users sharing containers; roles are given per membership."""

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Profile(models.Model):
    """Dashboard-wide facts about a user; today only the dashboard-admin flag.

    A dashboard admin owns global things (hosts, users, teams, registries, unowned
    resources). A team role, even `admin`, never grants any of that.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_profile"
    )
    dashboard_admin = models.BooleanField(default=False)

    def __str__(self):
        return f"profile of {self.user}"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    """A user's role in one team."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_role_per_team")]
        ordering = ["team__name", "user__username"]

    def __str__(self):
        return f"{self.user} is {self.role} in {self.team}"


class Job(models.Model):
    """One Docker write queued for a worker; its status is pushed to `job.<id>`."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    host = models.ForeignKey(Host, null=True, on_delete=models.SET_NULL)
    # What the job acts on, as a label ("container web-1") and optional object key.
    target = models.CharField(max_length=255, blank=True)
    container = models.ForeignKey(
        "containers.Container", null=True, blank=True, on_delete=models.SET_NULL
    )
    params = models.JSONField(default=dict, blank=True)
    # The API token the job was queued through: the worker narrows the user by it again
    # (dashboard.access.narrow) and the audit log says "via API token <name>".
    api_token = models.ForeignKey(
        "api.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # Values the worker needs but nobody may read back (environment values), Fernet-
    # encrypted and emptied when the job ends.
    secret_params = models.TextField(blank=True, default="")
    # Identity of what a create job made: a random nonce only this row knows, and the
    # engine id recorded the moment the engine returned it. Never a label lookup alone.
    nonce = models.CharField(max_length=32, blank=True, default="")
    created_id = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True)
    # What a long job prints (pull progress lines, build steps, compose output), the
    # tail only (JOB_OUTPUT_MAX_CHARS), and its progress bars: key → {status, current,
    # total}. Written through `jobs.reporter`; never holds secrets (it is shown to
    # everyone who may see the job).
    output = models.TextField(blank=True, default="")
    progress = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the task was last handed to the broker: a queued job that no worker claimed
    # is sent again (the database, not Redis, is the source of truth for jobs).
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The claiming worker renews this while it works; past it, the worker is lost.
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "lease_until"], name="job_status_lease")]

    def __str__(self):
        return f"{self.kind} {self.target} ({self.status})"

    @property
    def done(self):
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def verb(self):
        """What the job does, in a word an operator reads ("stop", "create")."""
        return self.params.get("action") or self.kind.rpartition(".")[2]


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("audit entries are append-only")

    def delete(self):
        raise TypeError("audit entries are append-only")


class AuditEntry(models.Model):
    """Append-only record of a mutation or exec session: who, when, where, what, result."""

    class Result(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        # Written before the engine is asked; filled in once with the outcome.
        PENDING = "pending", "In progress"
        # The worker was lost before it could say; the message has the engine's state.
        UNKNOWN = "unknown", "Outcome unknown"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # DO_NOTHING without a DB constraint: deleting a user, host or team must not
    # rewrite history (SET_NULL would UPDATE audit rows); the *_name copies stay.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    # Set when the entry was written through an API request: "via API token <name>".
    api_token_id = models.BigIntegerField(null=True, blank=True)
    # A database default too: rows written by raw SQL (other tools) need no value.
    api_token_name = models.CharField(max_length=64, blank=True, db_default="")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    host = models.ForeignKey(
        Host,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    host_name = models.CharField(max_length=64, blank=True)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=16, choices=Result, default=Result.OK)
    message = models.TextField(blank=True)
    # The job this entry belongs to (an intent is completed by the job, or by recovery).
    job_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit entries are append-only")

    def complete(self, result, message=""):
        """Fill in the outcome of a pending intent, once; returns False if it had one already.

        The only change an entry ever sees: `result`, `message` and `completed_at`,
        from PENDING, once (the database trigger enforces the same on PostgreSQL).
        """
        now = timezone.now()
        # Engine errors may quote a command or URL with credentials: never keep them.
        message = mask_credentials(message)
        done = models.QuerySet.update(
            AuditEntry.objects.filter(pk=self.pk, result=self.Result.PENDING),
            result=result,
            message=message[:4000],
            completed_at=now,
        )
        if done:
            self.result, self.message, self.completed_at = result, message[:4000], now
        return bool(done)
