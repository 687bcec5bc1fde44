"""Services of the maintenance app: windows (create, change, open/close around an operation)
and the one runner of maintenance tasks (lock, record, always terminate the run row)."""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant

from . import registry
from .choices import Recurrence, RunStatus, WindowScope, WindowSource
from .models import MaintenanceRun, MaintenanceWindow, MaintenanceWindowObject

log = logging.getLogger(__name__)

WINDOW_FIELDS = (
    "name", "description", "recurrence", "starts_at", "ends_at", "cron", "rrule", "duration_minutes",
    "timezone", "scope", "label_matchers", "enabled",
)


def _payload(window: MaintenanceWindow, **extra) -> dict:
    return {
        "id": window.pk,
        "object_type": "maintenance.maintenancewindow",
        "title": f"Maintenance window {window.name}",
        "url": f"/admin/maintenance/maintenancewindow/{window.pk}/change/",
        "recurrence": window.recurrence,
        "starts_at": window.starts_at.isoformat() if window.starts_at else None,
        "ends_at": window.ends_at.isoformat() if window.ends_at else None,
        "scope": window.scope,
        "label_matchers": window.label_matchers,
        **extra,
    }


def _set_objects(window: MaintenanceWindow, objects) -> None:
    """objects: model instances or (content_type_or_label, object_id) pairs."""
    window.objects_in_scope.all().delete()
    rows = []
    for item in objects:
        if isinstance(item, (tuple, list)):
            ct, object_id = item
            if isinstance(ct, str):
                app_label, model = ct.split(".", 1)
                ct = ContentType.objects.get_by_natural_key(app_label, model)
            elif isinstance(ct, int):
                ct = ContentType.objects.get_for_id(ct)
        else:
            ct, object_id = ContentType.objects.get_for_model(type(item)), item.pk
            if getattr(item, "tenant_id", window.tenant_id) != window.tenant_id:
                raise ValidationError({"objects": f"{item} belongs to another tenant."})
        rows.append(MaintenanceWindowObject(window=window, content_type=ct, object_id=int(object_id)))
    MaintenanceWindowObject.objects.bulk_create(rows, ignore_conflicts=True)
    window._objects_cache = None


def window_create(*, actor, objects=(), **fields) -> MaintenanceWindow:
    """Create a maintenance window (scope: the tenant, or objects and/or label matchers)."""
    unknown = set(fields) - set(WINDOW_FIELDS) - {"tenant", "tenant_id", "source"}
    if unknown:
        raise ValidationError(f"Unknown window fields: {', '.join(sorted(unknown))}.")
    window = MaintenanceWindow(**fields, created_by=actor if getattr(actor, "pk", None) else None)
    assign_tenant(window, actor=actor)
    if actor is not None and not policy.allows(actor, "add", MaintenanceWindow):
        raise PermissionDenied("Your role may not create maintenance windows.")
    checked = objects is not None  # the admin saves its inline objects after the window
    objects = list(objects or ())
    if objects and window.scope == WindowScope.TENANT:
        window.scope = WindowScope.OBJECTS
    if checked and window.scope == WindowScope.OBJECTS and not objects and not window.label_matchers:
        raise ValidationError({"scope": "A window scoped to objects needs objects or label matchers."})
    with transaction.atomic():
        window.full_clean()
        window.save()
        if objects:
            _set_objects(window, objects)
        publish("maintenance_window.created", tenant=window.tenant_id, payload=_payload(window), actor=actor)
    return window


def window_update(window: MaintenanceWindow, *, actor, objects=None, **fields) -> MaintenanceWindow:
    """Change a window's fields (and, if given, its scoped objects)."""
    if actor is not None and not policy.allows_object(actor, "change", window):
        raise PermissionDenied("You may not change this maintenance window.")
    for key, value in fields.items():
        if key not in WINDOW_FIELDS:
            raise ValidationError(f"Field {key!r} cannot be changed.")
        setattr(window, key, value)
    with transaction.atomic():
        window.full_clean()
        window.save()
        if objects is not None:
            _set_objects(window, list(objects))
        publish("maintenance_window.updated", tenant=window.tenant_id, payload=_payload(window), actor=actor)
    return window


def window_delete(window: MaintenanceWindow, *, actor) -> None:
    if actor is not None and not policy.allows_object(actor, "delete", window):
        raise PermissionDenied("You may not delete this maintenance window.")
    with transaction.atomic():
        publish("maintenance_window.deleted", tenant=window.tenant_id, payload=_payload(window), actor=actor)
        window.delete()


def window_open(*, tenant_id: int, name: str, objects=(), label_matchers=None, actor=None,
                source: str = WindowSource.OPERATION, until: datetime | None = None) -> MaintenanceWindow:
    """Open a window now (e.g. while a deployment operation runs); close it with `window_close`.
    Without `until` it lasts `MAINTENANCE_OPEN_WINDOW_MAX_HOURS` as a safety net."""
    now = timezone.now()
    until = until or now + timedelta(hours=settings.MAINTENANCE_OPEN_WINDOW_MAX_HOURS)
    scope = WindowScope.OBJECTS if (objects or label_matchers) else WindowScope.TENANT
    return window_create(
        actor=actor, tenant_id=tenant_id, name=name, recurrence=Recurrence.ONE_OFF, starts_at=now, ends_at=until,
        scope=scope, label_matchers=label_matchers or {}, objects=objects, source=source,
    )


def window_close(window: MaintenanceWindow, *, actor=None) -> MaintenanceWindow:
    """End a one-off window now (no-op if it already ended)."""
    now = timezone.now()
    if window.recurrence != Recurrence.ONE_OFF:
        raise ValidationError("Only one-off windows can be closed; disable a recurring window instead.")
    if window.ends_at and window.ends_at <= now:
        return window
    return window_update(window, actor=actor, ends_at=max(now, window.starts_at + timedelta(microseconds=1)))


# -- maintenance runs -------------------------------------------------------------------------
def _lock_key(name: str) -> str:
    return f"maintenance:lock:{name}"


def maintenance_run(*, task: str, actor=None, dry_run: bool = False, batch_size: int | None = None,
                    params: dict | None = None, trigger: str = "system", progress=None) -> MaintenanceRun:
    """Run one registered maintenance task and record it as a MaintenanceRun.

    Overlapping runs of the same task are prevented by a lock (cache `add`, expiring after
    `MAINTENANCE_LOCK_SECONDS` so a killed worker cannot hold it forever): the loser is recorded
    as `skipped`. The run row is written first and always terminated with status and error.
    """
    spec = registry.get(task)
    if spec is None:
        raise ValidationError(f"Unknown maintenance task {task!r}. Known: {', '.join(t.name for t in registry.all_tasks())}.")
    if actor is not None and not policy.allows(actor, "add", MaintenanceRun):
        raise PermissionDenied("Only platform admins run maintenance tasks.")
    batch_size = batch_size or settings.MAINTENANCE_BATCH_SIZE
    run = MaintenanceRun.objects.create(
        task=task, parameters={"batch_size": batch_size, **(params or {})}, dry_run=dry_run,
        triggered_by=actor if getattr(actor, "pk", None) else None, trigger=trigger,
    )
    token = str(run.pk)
    if not cache.add(_lock_key(task), token, timeout=settings.MAINTENANCE_LOCK_SECONDS):
        holder = cache.get(_lock_key(task))
        run.status = RunStatus.SKIPPED
        run.error = f"Another run of {task} (run #{holder}) is in progress."
        run.finished_at = timezone.now()
        run.duration_seconds = 0.0
        run.save()
        return run
    started = time.monotonic()
    try:
        ctx = registry.TaskContext(dry_run=dry_run, batch_size=batch_size, params=params or {},
                                   progress=progress or (lambda done, total: None))
        outcome = spec.func(ctx)
        if isinstance(outcome, dict):
            outcome = registry.TaskOutcome(rows_removed=outcome)
        run.rows_removed = {k: int(v) for k, v in outcome.rows_removed.items()}
        run.total_rows = sum(run.rows_removed.values())
        run.bytes_freed = int(outcome.bytes_freed or 0)
        run.details = outcome.details
        run.status = RunStatus.SUCCEEDED
    except Exception as exc:  # recorded on the run; the runner must always terminate the row
        log.exception("maintenance task %s failed", task)
        run.status = RunStatus.FAILED
        run.error = f"{exc!r}\n{traceback.format_exc(limit=5)}"[:8000]
    finally:
        if cache.get(_lock_key(task)) == token:
            cache.delete(_lock_key(task))
        run.finished_at = timezone.now()
        run.duration_seconds = round(time.monotonic() - started, 3)
        run.save()
    return run


def purge_in_batches(queryset, *, ctx: registry.TaskContext, label: str | None = None) -> dict[str, int]:
    """Delete a queryset's rows in primary-key batches of `ctx.batch_size` (short transactions,
    no long table locks); in a dry run only count. Returns {table: rows}."""
    model = queryset.model
    table = label or model._meta.db_table
    total = queryset.count()
    if ctx.dry_run or total == 0:
        return {table: total}
    done = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: ctx.batch_size])
        if not ids:
            break
        with transaction.atomic():
            deleted, _ = model._base_manager.filter(pk__in=ids).delete()
        done += deleted
        ctx.progress(done, total)
    return {table: done}
