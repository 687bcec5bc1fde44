"""Create or update the beat schedules every app defines in its `schedules.py` (idempotent)."""

from django.core.management.base import BaseCommand

from apps.core import periodic


class Command(BaseCommand):
    help = "Sync code-defined periodic tasks into django-celery-beat (the admin can still pause and edit them)."

    def handle(self, *args, **options):
        schedules = periodic.collect()
        created, updated = periodic.sync(schedules)
        for spec in schedules:
            self.stdout.write(f"  {spec.name}: {spec.task}")
        self.stdout.write(self.style.SUCCESS(f"{len(schedules)} schedules: {created} created, {updated} updated"))
