"""Register a Docker engine: add_host NAME URL."""

from django.core.management.base import BaseCommand, CommandError

from dashboard.audit import Actor
from dashboard.forms import HostForm
from dashboard.models import Host
from dashboard.services import check_host, save_host


class Command(BaseCommand):
    help = "Register a Docker engine by name and URL (unix:///… or tcp://…); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url")

    def handle(self, *args, name, url, **options):
        host = Host.objects.filter(name=name).first()
        created = host is None
        changed = created or host.url != url
        # The same validation as the UI's form, so a host added here is one it accepts.
        form = HostForm({"name": name, "url": url, "tls_verify": True}, instance=host)
        if not form.is_valid():
            errors = "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())
            raise CommandError(errors)
        if changed:
            host = host or Host(name=name)
            host.url = url
            # Through the service, so the change is audited (as "system") like a UI one.
            save_host(Actor(None), host)
        ok, message = check_host(host)
        verb = "Added" if created else "Host exists:"
        self.stdout.write(
            f"{verb} {name} ({url}): {'reachable' if ok else 'UNREACHABLE'} — {message}"
        )
