from django.core.management.base import BaseCommand

from apps.tickets.services import sla_sweep


class Command(BaseCommand):
    help = "Mark at-risk and breached tickets now (what the beat task does every minute)."

    def handle(self, *args, **options):
        counts = sla_sweep()
        self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
