"""manage.py load_alert_rules FILE.yml — create or update alert rules by name (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from alerts.loader import LoadError, load
from alerts.services import RuleError


class Command(BaseCommand):
    help = "Create or update alert rules by name from a YAML file (see alerts/loader.py)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the rules file (YAML), or - for standard input")

    def handle(self, *args, file, **options):
        try:
            if file == "-":
                import sys

                text = sys.stdin.read()
            else:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file} is not UTF-8 text") from None
        try:
            report = load(text)
        except (LoadError, RuleError) as exc:
            raise CommandError(f"{file}: nothing changed:\n{exc}") from None
        for name, what in report:
            self.stdout.write(f"{name}: {what}")
        created = sum(1 for _n, w in report if w == "created")
        updated = sum(1 for _n, w in report if w.startswith("updated"))
        unchanged = len(report) - created - updated
        if not created and not updated:
            self.stdout.write(f"Nothing changed ({unchanged} rules already as in the file).")
        else:
            self.stdout.write(f"{created} created, {updated} updated, {unchanged} unchanged.")
