from django.core.management.base import BaseCommand

from apps.alerts.services import alerts_purge


class Command(BaseCommand):
    help = "Delete expired alerts and resolved alerts older than the retention period (ALERTS_RETENTION_DAYS)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Retention in days (default: ALERTS_RETENTION_DAYS).")

    def handle(self, *args, days=None, **options):
        removed = alerts_purge(retention_days=days)
        self.stdout.write(f"{removed} alert(s) removed.")
