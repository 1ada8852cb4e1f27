"""Alert rules, their per-container state, alert history, silences and the email outbox."""

import fnmatch

from django.conf import settings
from django.db import models
from django.utils import timezone

from containers.models import Container
from dashboard.models import Host, Team


class Event(models.TextChoices):
    DIED_NONZERO = "died_nonzero", "Died with a non-zero exit"
    OOM = "oom", "OOM-killed"
    UNHEALTHY = "unhealthy", "Unhealthy"
    RESTART_LOOP = "restart_loop", "Restart loop"
    HOST_UNREACHABLE = "host_unreachable", "Host unreachable"


class Op(models.TextChoices):
    GT = ">", ">"
    GE = ">=", "≥"
    LT = "<", "<"
    LE = "<=", "≤"


OPS = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}


class AlertRule(models.Model):
    """What to watch (a metric against a threshold, or an event), where, and whom to tell.

    Scope: the rule's team (None: every team's and unowned containers, dashboard
    admins only), optionally narrowed to one host, one container, and a name glob.
    A team rule applies only to containers the database says that team owns.
    """

    class Source(models.TextChoices):
        UI = "ui", "Made in the UI"
        CODE = "code", "Loaded from a file"

    name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    host = models.ForeignKey(
        Host, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    container = models.ForeignKey(
        Container, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    name_glob = models.CharField(max_length=255, default="*")
    # Exactly one of metric / event.
    metric = models.CharField(max_length=32, blank=True)
    op = models.CharField(max_length=2, choices=Op, default=Op.GT)
    threshold = models.FloatField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(default=60)
    event = models.CharField(max_length=32, choices=Event, blank=True)
    restart_count = models.PositiveIntegerField(default=3)
    restart_window_seconds = models.PositiveIntegerField(default=600)
    for_seconds = models.PositiveIntegerField(default=0)
    repeat_seconds = models.PositiveIntegerField(default=0)  # 0: one email per firing
    send_resolved = models.BooleanField(default=True)
    recipients = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=8, choices=Source, default=Source.UI)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_event(self):
        return bool(self.event)

    @property
    def condition(self):
        if self.event == Event.RESTART_LOOP:
            return f"≥ {self.restart_count} restarts in {self.restart_window_seconds // 60} min"
        if self.event:
            return self.get_event_display()
        return f"{self.metric} {self.op} {self.threshold:g}"

    def scope_label(self):
        parts = [self.team.name if self.team else "all teams"]
        if self.host_id:
            parts.append(f"host {self.host.name}")
        if self.container_id:
            parts.append(f"container {self.container.name}")
        if self.name_glob and self.name_glob != "*":
            parts.append(f"name {self.name_glob}")
        return ", ".join(parts)

    def matches(self, container):
        """Does this rule's scope cover `container` (a mirror row)?"""
        if self.team_id is not None and container.team_id != self.team_id:
            return False
        if self.host_id is not None and container.host_id != self.host_id:
            return False
        if self.container_id is not None and container.pk != self.container_id:
            return False
        return fnmatch.fnmatchcase(container.name, self.name_glob or "*")

    def matches_host(self, host):
        if self.host_id is not None and host.pk != self.host_id:
            return False
        if self.container_id is not None:
            return False
        if self.team_id is not None:
            return host.all_teams or host.teams.filter(pk=self.team_id).exists()
        return True


class AlertState(models.Model):
    """Where one rule stands for one container (or host): persisted, so a restarted
    worker neither fires again what already fired nor forgets what was pending."""

    class Status(models.TextChoices):
        INACTIVE = "inactive", "Inactive"
        PENDING = "pending", "Pending"
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=32)  # "c<container pk>" or "h<host pk>"
    container = models.ForeignKey(Container, null=True, blank=True, on_delete=models.CASCADE)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.CASCADE)
    status = models.CharField(max_length=10, choices=Status, default=Status.INACTIVE)
    since = models.DateTimeField(null=True, blank=True)  # when the condition became true
    value = models.FloatField(null=True, blank=True)
    alert = models.ForeignKey("Alert", null=True, blank=True, on_delete=models.SET_NULL)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # Restart times (unix seconds) for restart loops; the last event's identity.
    data = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "subject"], name="one_state_per_rule_subject")
        ]

    def __str__(self):
        return f"{self.rule_id}/{self.subject}: {self.status}"


class AlertQuerySet(models.QuerySet):
    def firing(self):
        return self.filter(resolved_at__isnull=True)


class Alert(models.Model):
    """One firing episode of a rule for a container or host: from firing to resolved.

    Names are copied in (rule, container, host) so history reads the same after
    the rule or container is gone.
    """

    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=100)
    rule_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    container = models.ForeignKey(
        Container, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    container_name = models.CharField(max_length=255, blank=True)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL)
    host_name = models.CharField(max_length=64, blank=True)
    condition = models.CharField(max_length=120)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    since = models.DateTimeField()  # the condition has held since
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=120, blank=True)
    silenced = models.BooleanField(default=False)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-fired_at", "-pk"]
        indexes = [models.Index(fields=["resolved_at", "fired_at"])]

    def __str__(self):
        return f"{self.rule_name} on {self.subject_name}"

    @property
    def subject_name(self):
        if self.container_name:
            return f"{self.container_name} on {self.host_name}"
        return f"host {self.host_name}"


class SilenceQuerySet(models.QuerySet):
    def active(self, at=None):
        at = at or timezone.now()
        return self.filter(starts_at__lte=at, ends_at__gt=at)


class Silence(models.Model):
    """No email for alerts it matches until `ends_at` (states still change)."""

    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.CASCADE)
    container_glob = models.CharField(max_length=255, default="*")
    comment = models.CharField(max_length=500)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-ends_at", "-pk"]

    def __str__(self):
        return f"silence {self.pk}: {self.comment[:40]}"

    @property
    def is_active(self):
        now = timezone.now()
        return self.starts_at <= now < self.ends_at

    def matches(self, rule, container=None, host=None):
        """Does it cover this rule's alert for `container` (or, for host alerts, `host`)?

        A team's silence covers only what its team owns: that team's containers, or
        the host alerts of that team's own rules.
        """
        if self.rule_id is not None and self.rule_id != rule.pk:
            return False
        if self.team_id is not None:
            owner = container.team_id if container is not None else rule.team_id
            if owner != self.team_id:
                return False
        subject_host = container.host_id if container is not None else getattr(host, "pk", None)
        if self.host_id is not None and subject_host != self.host_id:
            return False
        if container is None:
            return (self.container_glob or "*") == "*"
        return fnmatch.fnmatchcase(container.name, self.container_glob or "*")


class Notification(models.Model):
    """The outbox: one row per (alert event, recipient), written in the transaction that
    changed the alert's state; the delivery task sends it (batched per recipient)."""

    class Kind(models.TextChoices):
        FIRING = "firing", "Firing"
        REPEAT = "repeat", "Still firing"
        RESOLVED = "resolved", "Resolved"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNCONFIRMED = "unconfirmed", "Not confirmed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind)
    recipient = models.EmailField()
    dedupe_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    # Set (committed) just before the message's DATA goes to the server: a worker lost
    # after this point may or may not have had its message accepted.
    handed_over_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["recipient", "sent_at"]),
        ]

    def __str__(self):
        return f"{self.kind} to {self.recipient} ({self.status})"
