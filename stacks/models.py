"""Compose applications ("stacks"): owned by a team, deployed on one host.

A stack's identity on the engine is the compose project name the dashboard chose
(`project`), never one a user typed, and its containers are the ones its deploys
recorded (`StackContainer`), never the ones that merely carry its project label.
"""

import secrets
import uuid

from django.conf import settings
from django.db import models

from dashboard import crypto
from dashboard.models import Host, Team


def new_webhook_secret():
    return secrets.token_urlsafe(32)


class StackQuerySet(models.QuerySet):
    def present(self):
        return self.filter(removed_at__isnull=True)


class Stack(models.Model):
    """A compose application on one host, owned by a team."""

    class Source(models.TextChoices):
        EDITOR = "editor", "Compose file"
        TEMPLATE = "template", "Template"
        GIT = "git", "Git repository"
        # A compose project found on an engine and adopted by a dashboard admin: no
        # file of ours, so only start, stop, restart and down.
        EXTERNAL = "external", "Adopted project"

    name = models.CharField(max_length=64)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="stacks")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="stacks"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The compose project: chosen by the dashboard (unique, with a random part), not by users.
    project = models.CharField(max_length=64, unique=True, editable=False)
    # A random value compose puts on every container of this stack (label
    # dockyard.stack): a container made elsewhere does not know it.
    container_nonce = models.CharField(max_length=32, editable=False)
    source = models.CharField(max_length=16, choices=Source, default=Source.EDITOR)
    template_slug = models.CharField(max_length=64, blank=True)
    git_url = models.CharField(max_length=500, blank=True)
    git_branch = models.CharField(max_length=200, blank=True, default="main")
    git_path = models.CharField(max_length=300, blank=True, default="compose.yaml")
    git_username = models.CharField(max_length=200, blank=True)
    git_password_encrypted = models.TextField(blank=True, editable=False)
    git_commit = models.CharField(max_length=40, blank=True)  # last deployed commit
    poll_minutes = models.PositiveIntegerField(default=0, help_text="0 = no polling")
    last_polled = models.DateTimeField(null=True, blank=True)
    registry = models.ForeignKey(
        "registries.Registry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook_secret_encrypted = models.TextField(editable=False)
    # What the last deploy ran: {service: {"image", "build"}} (pages read this, not files).
    deployed_services = models.JSONField(default=dict, blank=True)
    # Per-service replica counts set from the stack page (applied on every deploy).
    scale = models.JSONField(default=dict, blank=True)
    current_version = models.ForeignKey(
        "StackVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The job holding the stack: jobs of one stack queue behind each other.
    running_job = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = StackQuerySet.as_manager()

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["host", "name"],
                condition=models.Q(removed_at__isnull=True),
                name="one_live_stack_name_per_host",
            )
        ]

    def __str__(self):
        return f"{self.name} on {self.host}"

    @property
    def webhook_secret(self):
        return crypto.decrypt(self.webhook_secret_encrypted)

    @webhook_secret.setter
    def webhook_secret(self, value):
        self.webhook_secret_encrypted = crypto.encrypt(value)

    @property
    def git_password(self):
        return crypto.decrypt(self.git_password_encrypted)

    @git_password.setter
    def git_password(self, value):
        self.git_password_encrypted = crypto.encrypt(value)

    @property
    def has_git_credentials(self):
        return bool(self.git_password_encrypted)


class StackVersion(models.Model):
    """One compose file (and env file) a stack was given; deployed versions are kept."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    compose = models.TextField()
    # The env file may hold passwords: encrypted, shown to operators only.
    env_encrypted = models.TextField(blank=True)
    # Template variables (generated passwords are in env, not here).
    variables = models.JSONField(default=dict, blank=True)
    commit = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=255, blank=True)
    # The model the form's check normalised from exactly these files (JSON, encrypted).
    checked_model_encrypted = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["stack", "number"], name="one_number_per_version")
        ]

    def __str__(self):
        return f"{self.stack.name} v{self.number}"

    @property
    def env(self):
        return crypto.decrypt(self.env_encrypted)

    @env.setter
    def env(self, value):
        self.env_encrypted = crypto.encrypt(value)

    @property
    def checked_model(self):
        return crypto.decrypt(self.checked_model_encrypted)

    @checked_model.setter
    def checked_model(self, value):
        self.checked_model_encrypted = crypto.encrypt(value)


class StackContainer(models.Model):
    """A container a deploy of this stack created (recorded by that deploy, by engine id)."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="members")
    container = models.OneToOneField(
        "containers.Container", on_delete=models.CASCADE, related_name="stack_member"
    )
    service = models.CharField(max_length=128)
    job_id = models.BigIntegerField(null=True, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "container__name"]

    def __str__(self):
        return f"{self.service} of {self.stack_id}"


class WebhookDelivery(models.Model):
    """A webhook call that was accepted: its delivery id (replays are ignored) and job."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="deliveries")
    delivery = models.CharField(max_length=128)
    received_at = models.DateTimeField(auto_now_add=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["stack", "delivery"], name="one_delivery_per_stack")
        ]

    def __str__(self):
        return f"delivery {self.delivery} of {self.stack_id}"
