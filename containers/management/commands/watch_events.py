from django.core.management.base import BaseCommand

from containers import events


class Command(BaseCommand):
    help = "Follow every host's Docker events and keep the container mirror current."

    def handle(self, *args, **options):
        self.stdout.write("Watching Docker events on all hosts (Ctrl-C stops).")
        events.run()
