from apps.maintenance.management.commands._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Delete check results older than the retention (recorded as a MaintenanceRun); --dry-run counts."
    task_name = "purge_check_results"
