"""Celery entry points (queue `notifications`): thin wrappers over the outbox services.

config/celery.py routes `notifications.*` to the `notifications` queue (and the senders name it
too: services.enqueue_deliveries, schedules.py), away from events on `default`; the Procfile gives
it its own worker."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="notifications.deliver")
def deliver_task(delivery_ids: list[int]) -> dict:
    """Send a batch of deliveries; rows already sent or taken by another worker are skipped."""
    from .services import deliveries_send

    return deliveries_send(delivery_ids=delivery_ids)


@shared_task(base=PortalTask, name="notifications.sweep_deliveries")
def sweep_deliveries_task() -> int:
    """Beat: re-queue deliveries a broker outage or a dead worker left behind, and due retries."""
    from .services import deliveries_sweep

    return deliveries_sweep()


@shared_task(base=PortalTask, name="notifications.send_digests")
def send_digests_task() -> int:
    """Beat: send hourly and daily digests whose time has come."""
    from .services import digests_send

    return digests_send()
