from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "apps.targets"
    label = "targets"

    def ready(self) -> None:
        from apps.core.tasks import register_dead_letter

        from .services import failed_task_record

        register_dead_letter(failed_task_record)  # the dead-letter list of every portal task
