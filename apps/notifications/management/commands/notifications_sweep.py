"""Run the outbox sweeper (and, with --digests, the digest sender) once — what beat does every 30 s."""

from django.core.management.base import BaseCommand

from ...services import deliveries_sweep, digests_send


class Command(BaseCommand):
    help = ("Re-queue deliveries a broker outage or a dead worker left behind and retries that are due "
            "(beat: notifications.sweep_deliveries); --digests also sends digests whose time has come.")

    def add_arguments(self, parser):
        parser.add_argument("--digests", action="store_true", help="Also send due hourly/daily digests.")
        parser.add_argument("--limit", type=int, default=5000, help="At most this many deliveries enqueued.")

    def handle(self, *args, digests, limit, **options):
        enqueued = deliveries_sweep(limit=limit)
        line = f"notifications_sweep: {enqueued} deliveries enqueued"
        if digests:
            line += f", {digests_send()} digests created"
        self.stdout.write(line)
