"""Shared body of the maintenance commands: progress on a terminal, quiet under cron, a summary."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError


class MaintenanceCommand(BaseCommand):
    task_name: str = ""

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be removed; change nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows deleted per transaction.")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="Task parameter (repeatable).")

    def _progress(self):
        stream = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        if not stream.isatty():
            return None

        def show(done, total):
            if total:
                width = 30
                filled = int(width * done / total)
                stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            else:
                stream.write(f"\r{done}")
            stream.flush()

        return show

    def run_task(self, name, options):
        from apps.maintenance.choices import RunStatus
        from apps.maintenance.services import maintenance_run

        params = {}
        for item in options.get("param") or []:
            key, _, value = item.partition("=")
            params[key] = value
        run = maintenance_run(task=name, dry_run=options["dry_run"], batch_size=options["batch_size"],
                              params=params, trigger="command", progress=self._progress())
        verb = "would remove" if run.dry_run else "removed"
        summary = f"{name}: {run.status}, {verb} {run.total_rows} rows {json.dumps(run.rows_removed)}, " \
                  f"freed {run.bytes_freed} bytes in {run.duration_seconds}s (run #{run.pk})"
        if run.details.get("message"):
            summary += f" — {run.details['message']}"
        if run.status == RunStatus.FAILED:
            raise CommandError(f"{summary}\n{run.error}")
        if run.status == RunStatus.SKIPPED:
            raise CommandError(run.error)
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(summary)

    def handle(self, *args, **options):
        self.run_task(self.task_name, options)
