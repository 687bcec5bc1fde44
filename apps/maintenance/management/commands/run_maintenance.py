from apps.maintenance.registry import all_tasks

from ._runner import MaintenanceCommand


class Command(MaintenanceCommand):
    help = "Run a registered maintenance task by name (--list to see them), recorded as a MaintenanceRun."

    def add_arguments(self, parser):
        parser.add_argument("task", nargs="?")
        parser.add_argument("--list", action="store_true")
        super().add_arguments(parser)

    def handle(self, *args, **options):
        if options["list"] or not options["task"]:
            for t in all_tasks():
                self.stdout.write(f"{t.name:28} {t.crontab or 'manual':14} {t.description}")
            return
        self.run_task(options["task"], options)
