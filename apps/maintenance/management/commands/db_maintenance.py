from ._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Run the 'db_maintenance' maintenance task (recorded as a MaintenanceRun)."
    task_name = "db_maintenance"
