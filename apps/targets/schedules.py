"""Periodic tasks of the targets app (synced to celery-beat by `setup_periodic_tasks`)."""

from apps.core.duefire import DueSet
from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(name="targets: reap runs of dead workers", task="targets.reap_runs", every_seconds=30, queue="jobs",
             description="Fails runs whose worker is gone or whose heartbeat stopped; re-enqueues queued runs whose task was lost."),
    Schedule(name="targets: missed schedules", task="targets.check_missed_schedules", every_seconds=60, queue="jobs",
             description="Publishes job_schedule.missed when a scheduled run has not started within its grace time."),
]

# Job schedules fire from `next_fire_at`, claimed in bulk by core's dispatcher (every second).
DUE_SETS = [
    DueSet(name="targets.schedule", model="targets.JobSchedule", next_after="apps.targets.scheduling.next_fire_after",
           fire="apps.targets.services.schedules_fire_due"),
]
