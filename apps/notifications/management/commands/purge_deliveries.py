from apps.maintenance.management.commands._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Delete finished deliveries older than NOTIFICATIONS_DELIVERY_RETENTION_DAYS (recorded as a MaintenanceRun); --dry-run counts, --param days=N overrides."
    task_name = "purge_deliveries"
