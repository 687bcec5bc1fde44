from django.conf import settings

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="dashboard: refresh summaries",
        task="dashboard.refresh_summaries",
        every_seconds=settings.DASHBOARD_REFRESH_SECONDS,
        description="Per-tenant counters behind the admin dashboard.",
    ),
    Schedule(
        name="dashboard: KPI checkpoint",
        task="dashboard.kpi_checkpoint",
        crontab="7 * * * *",
        description="Evaluates KPI targets for the last completed period; a miss raises an alert and opens a backlog ticket once.",
    ),
    Schedule(
        name="dashboard: recompute account health",
        task="dashboard.recompute_health",
        every_seconds=settings.DASHBOARD_HEALTH_SECONDS,
        description="Account health scores of tenants and customers (last 30 days).",
    ),
]
