"""Celery tasks of the targets app (queue `jobs`): thin entry points that call services.
A task that fails for good is recorded in the dead-letter list (`FailedTask`, admin)."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


class TargetsTask(PortalTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        try:
            from .services import failed_task_record

            failed_task_record(task_name=self.name, task_id=task_id, args=args, kwargs=kwargs, exc=exc, traceback_text=str(einfo))
        except Exception:
            pass


@shared_task(base=TargetsTask, name="targets.execute_run", acks_late=True)
def execute_run_task(run_id: int) -> str | None:
    """Run one queued JobRun to the end (no-op if it is taken, finished or cancelled)."""
    from .services import run_execute

    run = run_execute(run_id=run_id)
    return run.status if run else None


@shared_task(base=TargetsTask, name="targets.run_schedule")
def run_schedule_task(schedule_id: int) -> int | None:
    """Beat fired a job schedule: queue its run."""
    from .services import schedule_fire

    run = schedule_fire(schedule_id=schedule_id)
    return run.pk if run else None


@shared_task(base=TargetsTask, name="targets.reap_runs")
def reap_runs_task() -> dict:
    """Beat: fail runs whose worker died, re-enqueue lost queued runs."""
    from .services import runs_reap

    return runs_reap()


@shared_task(base=TargetsTask, name="targets.check_missed_schedules")
def check_missed_schedules_task() -> int:
    """Beat: the dead-man's switch of job schedules."""
    from .services import schedules_check_missed

    return schedules_check_missed()
