from ._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Run the 'clear_cache' maintenance task (recorded as a MaintenanceRun)."
    task_name = "clear_cache"
