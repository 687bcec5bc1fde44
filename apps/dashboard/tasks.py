"""Beat tasks of the dashboard app (thin: each calls one service). A second worker running the
same task at the same time is harmless: summaries and health rows are upserts, and checkpoint
rows are unique per tenant × KPI × period."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="dashboard.refresh_summaries")
def refresh_summaries_task(tenant_id: int | None = None) -> int:
    """Recompute the per-tenant dashboard summaries."""
    from .services import summary_refresh

    return summary_refresh(tenant=tenant_id)


@shared_task(base=PortalTask, name="dashboard.kpi_checkpoint")
def kpi_checkpoint_task() -> dict:
    """Evaluate KPI targets for their last completed period (a miss: one alert, one ticket)."""
    from .services import kpi_checkpoint_run

    return kpi_checkpoint_run()


@shared_task(base=PortalTask, name="dashboard.recompute_health")
def recompute_health_task(tenant_id: int | None = None) -> int:
    """Recompute account health of tenants and customers."""
    from .services import health_recompute

    return health_recompute(tenant=tenant_id)
