"""Celery tasks of the deployments app (queue `jobs`): thin entry points over the services."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="deployments.start_operation")
def start_operation_task(operation_id: int) -> str | None:
    """Start a scheduled operation (no-op unless it is scheduled; waits for a window if needed)."""
    from .services import operation_start

    op = operation_start(operation_id=operation_id)
    return op.status if op else None


@shared_task(base=PortalTask, name="deployments.advance_operation")
def advance_operation_task(operation_id: int) -> str | None:
    """Move a running operation on after a batch's job run ended (idempotent)."""
    from .services import operation_advance

    op = operation_advance(operation_id=operation_id)
    return op.status if op else None


@shared_task(base=PortalTask, name="deployments.fire_schedule")
def fire_schedule_task(schedule_id: str) -> None:
    """The name of the display-only PeriodicTask of each schedule. Schedules fire from core's
    dispatcher (`core.dispatch_due`); a message sent by beat (the row enabled by hand in beat's
    admin, or queued before the upgrade) is dropped so nothing fires twice."""
    import logging

    logging.getLogger(__name__).warning("deployments.fire_schedule(%s) ignored: schedules fire from core.dispatch_due", schedule_id)


@shared_task(base=PortalTask, name="deployments.sweep")
def sweep_task() -> dict:
    """Beat: start operations whose window opened, advance runs whose event was lost, expire approvals."""
    from .services import approvals_expire, operations_sweep, schedules_fire_missed

    result = operations_sweep()
    result["expired"] = approvals_expire()
    result["missed_schedules_fired"] = schedules_fire_missed()
    return result
