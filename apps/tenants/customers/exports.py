"""Data exports: request (who may export what), build (a zip of JSON or CSV files, one per data
type, built by a task with progress), download (permission and expiry checked, audited through
the row's history) and expiry (files removed by a beat task)."""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import tempfile
import uuid
import zipfile
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import OrgKind
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.storage import storage_delete, storage_save
from apps.core.tenancy import acting

from .choices import ExportFormat, ExportStatus
from .models import Customer, DataExport
from .registry import ExportScope, exporters

log = logging.getLogger(__name__)
DISK_WAIT = "Waiting for disk space; the export will be built again: "


def _own_customer(actor) -> Customer:
    ctx = acting(actor)
    customer = Customer.objects.filter(organization_id=ctx.organization_id, tenant_id=ctx.tenant_id).first()
    if customer is None:
        raise PermissionDenied("Your organization has no customer record to export or erase.")
    return customer


def data_export_request(
    *,
    actor,
    customer: Customer | None = None,
    tenant=None,
    format: str = ExportFormat.JSON,
    data_types: list[str] | None = None,
    date_from=None,
    date_to=None,
) -> DataExport:
    """Request an export: tenant owners/admins for their tenant (all customers, or one), a
    customer for itself only. The file is built by `tenants.build_data_export` after commit."""
    if actor is not None and not policy.allows(actor, "add", DataExport):
        raise PermissionDenied("Only tenant owners and admins, or customers for themselves, request exports.")
    ctx = acting(actor) if actor is not None else None
    if ctx is not None and ctx.kind == OrgKind.CUSTOMER:
        own = _own_customer(actor)
        if customer is not None and customer.pk != own.pk:
            raise PermissionDenied("Customers export their own data only.")
        customer = own
    if customer is not None:
        if actor is not None and not Customer.objects.visible_to(actor).filter(pk=customer.pk).exists():
            raise PermissionDenied("You cannot export this customer's data.")
        tenant_id = customer.tenant_id
    else:
        tenant_id = tenant.pk if tenant is not None else (ctx.tenant_id if ctx else None)
        if tenant_id is None:
            raise ValidationError({"tenant": "Name the tenant (or the customer) to export."})
        if ctx is not None and not ctx.can_write_tenant(tenant_id):
            raise PermissionDenied("You cannot export that tenant's data.")
    available = exporters()
    chosen = list(dict.fromkeys(data_types or list(available)))
    unknown = [t for t in chosen if t not in available]
    if unknown:
        raise ValidationError({"data_types": f"Unknown data type(s) {', '.join(unknown)}; available: {', '.join(sorted(available))}."})
    if format not in ExportFormat.values:
        raise ValidationError({"format": f"Format is one of {', '.join(ExportFormat.values)}."})
    if date_from and date_to and date_from > date_to:
        raise ValidationError({"date_to": "The end of the date range is before its start."})
    with transaction.atomic():
        export = DataExport(
            tenant_id=tenant_id, customer=customer, requested_by=actor, format=format, data_types=chosen,
            date_from=date_from, date_to=date_to,
        )
        if actor is not None:
            export._history_user = actor
        export.full_clean()
        export.save()
        from ..tasks import build_data_export_task

        transaction.on_commit(lambda: build_data_export_task.delay(export.pk))
    return export


def data_export_claim(*, export_id: int) -> bool:
    """Claim a pending export for building (or one whose builder died long ago)."""
    stale = timezone.now() - timedelta(seconds=settings.CUSTOMER_EXPORT_STALE_SECONDS)
    return bool(
        DataExport.objects.filter(pk=export_id)
        .filter(Q(status=ExportStatus.PENDING) | Q(status=ExportStatus.RUNNING, started_at__lt=stale))
        .update(status=ExportStatus.RUNNING, started_at=timezone.now(), progress=0, error="")
    )


def data_export_build(*, export_id: int) -> DataExport | None:
    """Build a claimed export: one file per data type in a zip (built in a local temporary
    file, then stored through the configured storage: MEDIA_ROOT or S3), progress updated after
    each type; always ends succeeded (with expiry) or failed (with the error)."""
    if not data_export_claim(export_id=export_id):
        return None
    export = DataExport.objects.select_related("customer").get(pk=export_id)
    scope = ExportScope(tenant_id=export.tenant_id, customer=export.customer, date_from=export.date_from, date_to=export.date_to)
    available = exporters()
    counts: dict[str, int] = {}
    try:
        with tempfile.TemporaryFile(prefix="export-") as local:
            _build_zip(local, export, scope, available, counts)
            size = local.seek(0, io.SEEK_END)
            stored = storage_save(f"exports/{export.tenant_id}/{uuid.uuid4().hex}.zip", local)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _failed(export, exc)
        # A full disk is transient: back to pending (the task retries with backoff, the sweeper
        # re-queues it if that is lost), unless it has waited longer than operators allow.
        waited = timezone.now() - export.created_at
        if waited > timedelta(hours=settings.CUSTOMER_EXPORT_DISK_WAIT_HOURS):
            return _failed(export, exc, prefix=f"No disk space for {settings.CUSTOMER_EXPORT_DISK_WAIT_HOURS} h: ")
        log.warning("export %s: disk full, will retry: %s", export.pk, exc)
        export.status, export.progress, export.started_at = ExportStatus.PENDING, 0, None
        export.error = (DISK_WAIT + str(exc))[:4000]
        export.save(update_fields=["status", "progress", "started_at", "error", "updated_at"])
        return export
    except Exception as exc:
        return _failed(export, exc)
    now = timezone.now()
    with transaction.atomic():
        export.status, export.progress, export.file = ExportStatus.SUCCEEDED, 100, stored
        export.size_bytes, export.row_counts, export.finished_at = size, counts, now
        export.expires_at = now + timedelta(hours=settings.CUSTOMER_EXPORT_TTL_HOURS)
        export.save()
        publish(
            "data_export.ready",
            tenant=export.tenant_id,
            payload={
                "id": export.pk, "object_type": "tenants.dataexport", "title": f"Your data export {export.pk} is ready",
                "url": f"/api/v1/exports/{export.pk}/download",
                "notify": {"type": "data_export_ready", "priority": "low", "user_ids": [export.requested_by_id] if export.requested_by_id else [],
                           "action_url": f"/api/v1/exports/{export.pk}/download", "action_label": "Download"},
            },
        )
    return export


def _build_zip(local, export: DataExport, scope: ExportScope, available, counts: dict[str, int]) -> None:
    """Write the archive (one file per data type and a manifest) into the open file `local`."""
    with zipfile.ZipFile(local, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, name in enumerate(export.data_types, start=1):
            rows = available[name].func(scope)
            with archive.open(f"{name}.{export.format}", "w") as raw:
                counts[name] = _write_rows(raw, rows, export.format)
            DataExport.objects.filter(pk=export.pk).update(progress=int(index * 100 / max(1, len(export.data_types))))
        manifest = {
            "export": export.pk, "tenant": export.tenant_id,
            "customer": export.customer.account_number if export.customer else None,
            "format": export.format, "data_types": export.data_types, "row_counts": counts,
            "date_from": export.date_from.isoformat() if export.date_from else None,
            "date_to": export.date_to.isoformat() if export.date_to else None,
            "created_at": timezone.now().isoformat(),
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))


def _failed(export: DataExport, exc: Exception, prefix: str = "") -> DataExport:
    log.error("export %s failed: %r", export.pk, exc, exc_info=exc)
    export.status, export.error, export.finished_at = ExportStatus.FAILED, (prefix + repr(exc))[:4000], timezone.now()
    export.save(update_fields=["status", "error", "finished_at", "updated_at"])
    return export


def waiting_for_disk(export: DataExport) -> bool:
    return export.status == ExportStatus.PENDING and export.error.startswith(DISK_WAIT)


def _write_rows(raw, rows, fmt: str) -> int:
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    count = 0
    if fmt == ExportFormat.JSON:
        text.write("[")
        for row in rows:
            text.write(("," if count else "") + "\n" + json.dumps(row, default=str))
            count += 1
        text.write("\n]\n")
    else:
        writer = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(text, fieldnames=list(row), restval="", extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
            count += 1
    text.flush()
    text.detach()
    return count


def data_export_download(export: DataExport, *, actor) -> str:
    """Check that `actor` may download this export now and record the download (the row's
    history keeps who and when); returns the file's name in the storage."""
    if actor is not None and not DataExport.objects.visible_to(actor, "download").filter(pk=export.pk).exists():
        raise PermissionDenied("You may not download this export.")
    if export.status == ExportStatus.EXPIRED or (export.expires_at and export.expires_at <= timezone.now()):
        raise ValidationError("This export has expired; request a new one.")
    if export.status != ExportStatus.SUCCEEDED:
        raise ValidationError(f"This export is {export.status} ({export.progress}% done); it cannot be downloaded yet.")
    if not export.file or not default_storage.exists(export.file):
        raise ValidationError("The export file is gone; request a new export.")
    with transaction.atomic():
        export.download_count += 1
        export.last_downloaded_at = timezone.now()
        export.last_downloaded_by = actor
        if actor is not None:
            export._history_user = actor
        export.save(update_fields=["download_count", "last_downloaded_at", "last_downloaded_by", "updated_at"])
    return export.file


def delete_export_file(export: DataExport) -> int:
    if not export.file:
        return 0
    existed = storage_delete(export.file)
    DataExport.objects.filter(pk=export.pk).update(file="", size_bytes=0)
    return int(existed)


def data_exports_expire() -> int:
    """Remove the files of exports past their expiry and mark them expired."""
    due = DataExport.objects.filter(status=ExportStatus.SUCCEEDED, expires_at__lte=timezone.now())
    count = 0
    for export in due.iterator():
        delete_export_file(export)
        DataExport.objects.filter(pk=export.pk).update(status=ExportStatus.EXPIRED, updated_at=timezone.now())
        count += 1
    return count
