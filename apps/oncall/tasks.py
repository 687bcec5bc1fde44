"""Celery entry points of the on-call app (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="oncall.check_gaps", autoretry_for=())
def check_gaps_task() -> dict:
    """Beat: find schedules with nobody on call within the next 7 days; publish changes (the
    alerts app raises or resolves an alert, the owners are told). Not retried: the next tick runs."""
    from .services import gaps_check

    return gaps_check()


@shared_task(base=PortalTask, name="oncall.notify_shifts", autoretry_for=())
def notify_shifts_task() -> int:
    """Beat: tell people their on-call shift started or ended since the last run."""
    from .services import shifts_notify

    return shifts_notify()
