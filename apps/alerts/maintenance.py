"""Maintenance tasks the alerts app contributes to apps.maintenance's registry (each run is
recorded as a MaintenanceRun; beat runs it daily, the admin and `run_maintenance` on demand)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.maintenance.registry import TaskContext, register
from apps.maintenance.services import purge_in_batches


def purgeable_alerts(*, now=None, retention_days: int | None = None):
    """Alerts past `expires_at`, and resolved alerts older than the retention period."""
    from .choices import AlertStatus
    from .models import Alert

    now = now or timezone.now()
    days = settings.ALERTS_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = now - timedelta(days=days)
    return Alert.objects.filter(Q(expires_at__lte=now) | Q(status=AlertStatus.RESOLVED, resolved_at__lt=cutoff))


@register("purge_alerts", crontab="17 3 * * *",
          description="Delete expired alerts and resolved alerts older than ALERTS_RETENTION_DAYS (param days=N).")
def purge_alerts(ctx: TaskContext):
    days = ctx.params.get("days")
    return purge_in_batches(purgeable_alerts(retention_days=int(days) if days is not None else None), ctx=ctx)
