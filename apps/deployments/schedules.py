from django.conf import settings

from apps.core.duefire import DueSet
from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="deployments: sweep operations",
        task="deployments.sweep",
        every_seconds=settings.DEPLOYMENTS_SWEEP_SECONDS,
        queue="jobs",
        description="Start operations whose maintenance window opened, advance operations whose job-run event was lost, expire approvals.",
    ),
]

# Deployment schedules fire from `next_fire_at`, claimed in bulk by core's dispatcher (every second).
DUE_SETS = [
    DueSet(name="deployments.schedule", model="deployments.DeploymentSchedule",
           next_after="apps.deployments.scheduling.next_fire_after", fire="apps.deployments.services.schedules_fire_due",
           related=("periodic_task__crontab", "periodic_task__interval")),
]
