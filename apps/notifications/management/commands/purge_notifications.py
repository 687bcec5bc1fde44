from apps.maintenance.management.commands._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Delete notifications older than NOTIFICATIONS_RETENTION_DAYS (no delivery in flight) (recorded as a MaintenanceRun); --dry-run counts, --param days=N overrides."
    task_name = "purge_notifications"
