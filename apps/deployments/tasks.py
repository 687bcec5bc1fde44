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
def fire_schedule_task(schedule_id: str) -> int | None:
    """Beat fired a deployment schedule: request its operation."""
    from .services import schedule_fire

    op = schedule_fire(schedule_id=schedule_id)
    return op.pk if op else None


@shared_task(base=PortalTask, name="deployments.sweep")
def sweep_task() -> dict:
    """Beat: start operations whose window opened, advance runs whose event was lost, expire approvals."""
    from .services import approvals_expire, operations_sweep, schedules_fire_missed

    result = operations_sweep()
    result["expired"] = approvals_expire()
    result["missed_schedules_fired"] = schedules_fire_missed()
    return result
