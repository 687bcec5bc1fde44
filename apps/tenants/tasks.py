"""Celery tasks of the tenants app (customers): thin entry points that call services."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(bind=True, base=PortalTask, name="tenants.build_data_export", max_retries=60)
def build_data_export_task(self, export_id: int) -> str | None:
    """Build one requested data export (no-op if it is already built or being built). On a full
    disk the export is pending again and this task comes back after 1, 2, 4 … 30 minutes
    (CUSTOMER_EXPORT_DISK_RETRY_SECONDS doubling, at most 30 times that; the
    service fails it once it has waited CUSTOMER_EXPORT_DISK_WAIT_HOURS; run eagerly, the sweeper
    re-queues it instead)."""
    from .customers.exports import data_export_build, waiting_for_disk

    export = data_export_build(export_id=export_id)
    if export is not None and waiting_for_disk(export) and not self.request.is_eager:
        from django.conf import settings

        base = settings.CUSTOMER_EXPORT_DISK_RETRY_SECONDS
        raise self.retry(countdown=min(base * 2 ** self.request.retries, 30 * base))
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
