from apps.maintenance.management.commands._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Delete runs (steps, output) finished more than TARGETS_RUN_RETENTION_DAYS ago (recorded as a MaintenanceRun); --dry-run counts, --param days=N overrides."
    task_name = "purge_job_runs"
