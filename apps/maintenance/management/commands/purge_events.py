from ._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Run the 'purge_events' maintenance task (recorded as a MaintenanceRun)."
    task_name = "purge_events"
