"""Celery entry points of the maintenance app."""

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="maintenance.run_task", autoretry_for=())
def run_maintenance_task(task: str, dry_run: bool = False, params: dict | None = None, trigger: str = "schedule",
                         user_id: int | None = None) -> int:
    """Run one registered maintenance task (beat schedule or admin "run now"); returns the run id.
    Not retried automatically: a failed purge is recorded and the next scheduled run catches up."""
    from django.contrib.auth import get_user_model

    from .services import maintenance_run

    actor = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return maintenance_run(task=task, dry_run=dry_run, params=params or {}, trigger=trigger, actor=actor).pk
