"""Create the admin account if missing. Prints a generated password once."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from dashboard.audit import Actor
from dashboard.services import create_user


class Command(BaseCommand):
    help = "Create a superuser if it does not exist (password from --password, "
    help += "$DASHBOARD_ADMIN_PASSWORD, or generated and printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=None)

    def handle(self, *args, username, password, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            if password:
                user = User.objects.get(username=username)
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(f"Admin {username!r} exists; password updated.")
            else:
                self.stdout.write(f"Admin {username!r} exists.")
            return
        password = password or os.environ.get("DASHBOARD_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        create_user(Actor.system(), username, password, superuser=True)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin {username!r} with password: {password}\n"
                    "It is shown only this once; change it under Password after logging in."
                )
            )
        else:
            self.stdout.write(f"Created admin {username!r}.")
