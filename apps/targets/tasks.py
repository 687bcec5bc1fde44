"""Celery tasks of the targets app (queue `jobs`): thin entry points that call services.
A portal task that fails for good is recorded in the dead-letter list (`FailedTask`, admin) by the
base task (`apps.core.tasks.dead_letter`; the writer is registered in `TargetsConfig.ready`)."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="targets.execute_run", acks_late=True, bind=True)
def execute_run_task(self, run_id: int) -> str | None:
    """Run one queued JobRun to the end (no-op if it is taken, finished or cancelled)."""
    from .services import run_execute

    # The worker's node name goes on the run: the reaper asks that node whether it still lives.
    run = run_execute(run_id=run_id, worker=self.request.hostname or None)
    return run.status if run else None


@shared_task(base=PortalTask, name="targets.run_schedule")
def run_schedule_task(schedule_id: int) -> None:
    """The name of the display-only PeriodicTask of each job schedule. Schedules fire from core's
    dispatcher (`core.dispatch_due`); a message sent by beat (the row enabled by hand in beat's
    admin, or queued before the upgrade) is dropped so nothing fires twice."""
    import logging

    logging.getLogger(__name__).warning("targets.run_schedule(%s) ignored: schedules fire from core.dispatch_due", schedule_id)


@shared_task(base=PortalTask, name="targets.reap_runs")
def reap_runs_task() -> dict:
    """Beat: fail runs whose worker died, re-enqueue lost queued runs."""
    from .services import runs_reap

    return runs_reap()


@shared_task(base=PortalTask, name="targets.check_missed_schedules")
def check_missed_schedules_task() -> int:
    """Beat: the dead-man's switch of job schedules."""
    from .services import schedules_check_missed

    return schedules_check_missed()
