"""manage.py send_alert_emails — deliver due alert emails now (what the beat sweep does)."""

from django.core.management.base import BaseCommand

from alerts import outbox


class Command(BaseCommand):
    help = "Send due alert emails now (the Celery beat sweep does this every few seconds)."

    def handle(self, *args, **options):
        sent = outbox.deliver_due()
        self.stdout.write(f"{sent} email(s) sent.")
