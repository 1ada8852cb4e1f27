"""Create a user, optionally in a team with a role."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dashboard.audit import Actor
from dashboard.models import Role, Team
from dashboard.services import create_user, set_membership


class Command(BaseCommand):
    help = "Create a user (or update its password) and give it a role in a team."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--team")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER)

    def handle(self, *args, username, password, email, team, role, **options):
        if role != Role.VIEWER and not team:
            raise CommandError("--role needs --team")  # before anything is written
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = create_user(None, username, password, email=email)
            self.stdout.write(f"Created user {username}.")
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"User {username} exists; password updated.")
        if team:
            team_obj, created = Team.objects.get_or_create(name=team)
            if created:
                self.stdout.write(f"Created team {team}.")
            # The shell user runs the server, so acts as the system (audited as "system").
            set_membership(Actor(None), team_obj, user, role)
            self.stdout.write(f"{username} is {role} in {team}.")
