"""Create a user, optionally in a team with a role, optionally a dashboard admin."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dashboard.audit import Actor
from dashboard.models import Role, Team
from dashboard.services import create_user, save_team, set_dashboard_admin, set_membership


class Command(BaseCommand):
    help = "Create a user (or update its password) and give it a role in a team."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--team")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER)
        parser.add_argument(
            "--admin",
            action="store_true",
            help="make the user a dashboard admin (hosts, users, every team)",
        )

    def handle(self, *args, username, password, email, team, role, admin, **options):
        if role != Role.VIEWER and not team:
            raise CommandError("--role needs --team")  # before anything is written
        # The shell user runs the server, so acts as the system (audited as "system").
        system = Actor.system()
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = create_user(system, username, password, email=email, dashboard_admin=admin)
            self.stdout.write(f"Created user {username}.")
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"User {username} exists; password updated.")
            if admin:
                set_dashboard_admin(system, user, True)
        if admin:
            self.stdout.write(f"{username} is a dashboard admin.")
        if team:
            team_obj = Team.objects.filter(name=team).first()
            if team_obj is None:
                team_obj = save_team(system, Team(name=team))
                self.stdout.write(f"Created team {team}.")
            set_membership(system, team_obj, user, role)
            self.stdout.write(f"{username} is {role} in {team}.")
