"""Celery tasks of the tenants app (customers): thin entry points that call services."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="tenants.build_data_export")
def build_data_export_task(export_id: int) -> str | None:
    """Build one requested data export (no-op if it is already built or being built)."""
    from .customers.exports import data_export_build

    export = data_export_build(export_id=export_id)
    return export.status if export else None


@shared_task(base=PortalTask, name="tenants.sweep_data_exports")
def sweep_data_exports_task() -> dict:
    """Beat: expire old export files; re-queue exports whose task was lost (pending too long)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from .customers.choices import ExportStatus
    from .customers.exports import data_exports_expire
    from .customers.models import DataExport

    expired = data_exports_expire()
    stale = timezone.now() - timedelta(seconds=settings.CUSTOMER_EXPORT_STALE_SECONDS)
    lost = list(DataExport.objects.filter(status=ExportStatus.PENDING, created_at__lt=stale).values_list("pk", flat=True)[:100])
    for pk in lost:
        build_data_export_task.delay(pk)
    return {"expired": expired, "requeued": len(lost)}


@shared_task(base=PortalTask, name="tenants.execute_due_deletions")
def execute_due_deletions_task() -> int:
    """Beat: erase the personal data of customers whose deletion grace period is over."""
    from .customers.deletion import deletion_requests_execute_due

    return deletion_requests_execute_due()
