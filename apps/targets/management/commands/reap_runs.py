"""Run the reaper once — what beat does every minute."""

from django.core.management.base import BaseCommand

from ...services.runs import runs_reap


class Command(BaseCommand):
    help = ("Fail running job runs whose worker stopped heartbeating (TARGETS_REAP_AFTER_SECONDS) and "
            "re-enqueue queued runs whose task was lost (beat: targets.reap_runs).")

    def handle(self, *args, **options):
        result = runs_reap()
        self.stdout.write(f"reap_runs: {result['reaped']} run(s) failed, {result['requeued']} queued run(s) re-enqueued")
