"""Register an image registry: add_registry NAME URL --username U --password-stdin
[--team T …] [--all-teams]; creates or updates by name."""

import sys

from django.core.management.base import BaseCommand, CommandError

from dashboard.audit import Actor
from registries import services
from registries.models import Registry


class Command(BaseCommand):
    help = (
        "Register an image registry by name and address, with credentials read from "
        "stdin, and grant it to teams; creates or updates by name (grants are added)."
    )
    # Tests hand in their own stdin (call_command(..., stdin=StringIO(...))).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url", help="registry.example.com[:port] or http(s)://host[:port]")
        parser.add_argument("--username", default=None, help="user name for the registry")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password or token from stdin (one line; never on the command line)",
        )
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            dest="teams",
            help="grant the registry to this team (repeatable; the team must exist)",
        )
        parser.add_argument(
            "--all-teams", action="store_true", help="open the registry to every team"
        )
        parser.add_argument(
            "--ca-cert", default=None, help="PEM file of the CA that signed the registry's cert"
        )
        parser.add_argument(
            "--no-tls-verify",
            action="store_true",
            help="do not verify the registry's certificate (not recommended)",
        )

    def handle(self, *args, name, url, username, password_stdin, teams, all_teams, **options):
        registry = Registry.objects.filter(name=name).first()
        password = None  # keep the stored one
        if password_stdin:
            stdin = options.get("stdin") or sys.stdin
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: nothing was read from stdin.")
        ca_cert = registry.ca_cert if registry else ""
        if options["ca_cert"]:
            try:
                with open(options["ca_cert"]) as f:
                    ca_cert = f.read()
            except OSError as exc:
                raise CommandError(f"--ca-cert: {exc.strerror}: {options['ca_cert']}") from None
        try:
            granted = services.teams_by_name(teams)
            if registry is not None:
                granted = list({*registry.teams.all(), *granted})
            current = _state(registry)
            wanted = {
                "name": name,
                "url": services.normalize_url(url),
                "username": username
                if username is not None
                else (registry.username if registry else ""),
                "teams": sorted(t.pk for t in granted),
                "all_teams": all_teams or bool(registry and registry.all_teams),
                "tls_verify": not options["no_tls_verify"]
                and (registry.tls_verify if registry else True),
                "ca_cert": ca_cert.strip(),
            }
            changed = current != wanted or (
                password is not None and (registry is None or password != registry.password)
            )
            if changed:
                # Through the service, so the change is audited (as "system") like a UI one.
                registry = services.save_registry(
                    Actor.system(),
                    registry,
                    name=name,
                    url=wanted["url"],
                    username=wanted["username"],
                    password=password,
                    teams=granted,
                    all_teams=wanted["all_teams"],
                    tls_verify=wanted["tls_verify"],
                    ca_cert=wanted["ca_cert"],
                )
        except services.RegistryInputError as exc:
            raise CommandError(str(exc)) from None
        verb = "Added" if current is None else ("Updated" if changed else "Registry exists:")
        ok, message = services.check_login(registry)
        opened = (
            "all teams"
            if registry.all_teams
            else (", ".join(t.name for t in registry.teams.all()) or "no team yet")
        )
        self.stdout.write(
            f"{verb} {registry.name} ({registry.url}): "
            f"{'login OK' if ok else 'login FAILED'} — {message}; open to {opened}"
        )


def _state(registry):
    if registry is None:
        return None
    return {
        "name": registry.name,
        "url": registry.url,
        "username": registry.username,
        "teams": sorted(registry.teams.values_list("pk", flat=True)),
        "all_teams": registry.all_teams,
        "tls_verify": registry.tls_verify,
        "ca_cert": registry.ca_cert,
    }
