from django.conf import settings

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
