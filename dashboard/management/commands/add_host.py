"""Register a Docker engine: add_host NAME URL [--team T …] [--all-teams] [--insecure]."""

from django.core.management.base import BaseCommand, CommandError

from dashboard.audit import Actor
from dashboard.forms import HostForm
from dashboard.models import Host, Team
from dashboard.services import check_host, save_host


class Command(BaseCommand):
    help = (
        "Register a Docker engine by name and URL (unix:///… or tcp://…) and grant it to "
        "teams; idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url")
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            dest="teams",
            help="grant the host to this team (repeatable; the team must exist)",
        )
        parser.add_argument("--all-teams", action="store_true", help="open the host to every team")
        parser.add_argument(
            "--insecure", action="store_true", help="allow tcp:// without TLS (not recommended)"
        )

    def handle(self, *args, name, url, teams, all_teams, insecure, **options):
        host = Host.objects.filter(name=name).first()
        created = host is None
        missing = sorted(
            set(teams) - set(Team.objects.filter(name__in=teams).values_list("name", flat=True))
        )
        if missing:
            raise CommandError(
                f"No such team: {', '.join(missing)} (create it with add_user --team)."
            )
        granted = list(Team.objects.filter(name__in=teams))
        if host is not None:
            granted = list({*host.teams.all(), *granted})
        data = {
            "name": name,
            "url": url,
            "tls_verify": True,
            "insecure": insecure or (host.insecure if host else False),
            "all_teams": all_teams or (host.all_teams if host else False),
            "teams": [t.pk for t in granted],
        }
        if host is not None:
            data.update(
                tls_ca_cert=host.tls_ca_cert,
                tls_client_cert=host.tls_client_cert,
                tls_verify=host.tls_verify,
            )
        # Read before validating: the form's is_valid() writes the new values onto `host`.
        current = (
            (host.url, host.insecure, host.all_teams, {t.pk for t in host.teams.all()})
            if host
            else None
        )
        # The same validation as the UI's form, so a host added here is one it accepts.
        form = HostForm(data, instance=host)
        if not form.is_valid():
            errors = "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())
            raise CommandError(errors)
        wanted = (url, data["insecure"], data["all_teams"], set(data["teams"]))
        if current != wanted:
            # Through the service, so the change is audited (as "system") like a UI one.
            host = save_host(Actor.system(), form.save(commit=False), teams=granted)
        ok, message = check_host(host)
        verb = "Added" if created else "Host exists:"
        opened = (
            "all teams"
            if host.all_teams
            else (", ".join(t.name for t in host.teams.all()) or "no team yet")
        )
        self.stdout.write(
            f"{verb} {name} ({url}): {'reachable' if ok else 'UNREACHABLE'} — {message}; "
            f"open to {opened}"
        )
