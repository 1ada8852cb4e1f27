"""`manage.py collect_metrics [--once]`: sweep now (once) or every METRICS_INTERVAL s."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from monitoring import collector, retention


class Command(BaseCommand):
    help = "Collect container metrics: one sweep with --once, else every METRICS_INTERVAL s."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")

    def handle(self, *args, once=False, **options):
        while True:
            started = time.monotonic()
            # A fresh process has no previous reading: prime, so rates are in the sample.
            results = collector.collect(prime=True) or []
            for r in results:
                if r.error:
                    self.stderr.write(f"host {r.host_id}: {r.error}")
                else:
                    self.stdout.write(
                        f"host {r.host_id}: {r.samples} containers by {r.method or 'nothing'}"
                        f" in {r.seconds * 1000:.1f} ms"
                    )
            if once:
                return
            retention.rollup()
            retention.prune()
            time.sleep(max(0.0, settings.METRICS_INTERVAL - (time.monotonic() - started)))
