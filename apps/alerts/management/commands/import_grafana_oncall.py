"""Import schedules, rotations and escalation chains from a Grafana OnCall export (JSON)."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.alerts.grafana import import_chains
from apps.oncall.grafana import import_schedules


class Command(BaseCommand):
    help = (
        "Import Grafana OnCall's schedules, on-call shifts and escalation chains for one tenant from a JSON file "
        "holding its public API lists: users, schedules, on_call_shifts, escalation_chains, escalation_policies "
        "(docs/oncall.md). Re-running skips what exists by name."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The export file (JSON).")
        parser.add_argument("--tenant", required=True, help="Slug of the tenant to import into.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be imported; write nothing.")

    def handle(self, *args, path, tenant, dry_run=False, **options):
        from apps.tenants.models import Organization

        org = Organization.objects.filter(slug=tenant, kind="tenant").first()
        if org is None:
            raise CommandError(f"No tenant with the slug {tenant!r}.")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError(
                "The export is a JSON object with the lists users, schedules, on_call_shifts, escalation_chains, escalation_policies."
            )
        try:
            with transaction.atomic():
                schedules, warnings = import_schedules(data, tenant=org)
                policies, more = import_chains(data, tenant=org, schedule_ids=schedules)
                if dry_run:
                    transaction.set_rollback(True)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        for line in [*warnings, *more]:
            self.stdout.write(f"warning: {line}")
        verb = "would import" if dry_run else "imported"
        self.stdout.write(f"{verb} {len(schedules)} schedule(s) and {len(policies)} escalation polic(ies) into {org.slug}.")
