"""manage.py create_token USER NAME [--read-only] [--expires DAYS] [--team T]: print a new token."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import tokens
from dashboard.audit import Actor
from dashboard.models import Team


class Command(BaseCommand):
    help = "Create an API token for USER and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("user")
        parser.add_argument("name")
        parser.add_argument("--read-only", action="store_true", help="Refuse every write")
        parser.add_argument(
            "--expires",
            type=int,
            default=tokens.DEFAULT_DAYS,
            metavar="DAYS",
            help=f"Days until it expires (default {tokens.DEFAULT_DAYS}, "
            f"at most {tokens.MAX_DAYS})",
        )
        parser.add_argument("--team", help="Only this team's things (a team of USER)")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise CommandError(f"No user {opts['user']!r}.")
        team = None
        if opts["team"]:
            team = Team.objects.filter(name=opts["team"]).first()
            if team is None:
                raise CommandError(f"No team {opts['team']!r}.")
        try:
            _token, text = tokens.create_token(
                Actor.system(),
                user,
                opts["name"],
                days=opts["expires"],
                read_only=opts["read_only"],
                team=team,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(text)
