"""Print a stack's webhook URL and secret, for setting up CI (the server's own shell)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from dashboard.audit import Actor, record
from stacks.models import Stack


class Command(BaseCommand):
    help = "Print the deploy webhook URL and secret of a stack (by id, project or name)."

    def add_arguments(self, parser):
        parser.add_argument(
            "stack", help="stack id, compose project, or name (host/name if ambiguous)"
        )
        parser.add_argument(
            "--base-url", default=None, help="the dashboard's address (DASHBOARD_BASE_URL)"
        )

    def handle(self, *args, stack, base_url, **options):
        found = _find(stack)
        base = (
            base_url or getattr(settings, "DASHBOARD_BASE_URL", "") or "http://localhost:8000"
        ).rstrip("/")
        url = base + reverse("stacks:webhook", args=[found.webhook_uuid])
        record(Actor.system(), "stack.webhook_show", target=found, target_type="stack")
        self.stdout.write(f"URL:    {url}")
        self.stdout.write(f"Secret: {found.webhook_secret}")
        self.stdout.write(
            "Sign the body with HMAC-SHA256 in X-Hub-Signature-256: sha256=<hex>, "
            "or send Authorization: Bearer <secret>."
        )


def _find(ref):
    stacks = Stack.objects.present().select_related("host")
    if ref.isdigit():
        match = stacks.filter(pk=int(ref))
    else:
        host, _, name = ref.rpartition("/")
        match = stacks.filter(project=ref) or stacks.filter(
            name=name, **({"host__name": host} if host else {})
        )
    match = list(match)
    if not match:
        raise CommandError(f"No stack {ref!r}.")
    if len(match) > 1:
        raise CommandError(f"{len(match)} stacks are named {ref!r}; use host/name or the id.")
    return match[0]
