"""Celery entry points of the alerts app (thin: claim, call a service)."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.core.tasks import PortalTask

log = logging.getLogger(__name__)


@shared_task(base=PortalTask, name="alerts.escalate_due")
def escalate_due_task() -> int:
    """Beat: run the due escalation step of every unacknowledged alert (each claimed with SKIP LOCKED)."""
    from .services import alert_escalate_step, escalations_due

    return sum(1 for pk in escalations_due() if alert_escalate_step(alert_id=pk) is not None)


@shared_task(base=PortalTask, name="alerts.auto_resolve")
def auto_resolve_task() -> int:
    """Beat: resolve alerts not seen again before their end time."""
    from .services import alerts_auto_resolve

    return alerts_auto_resolve()


@shared_task(base=PortalTask, name="alerts.evaluate_rules")
def evaluate_rules_task() -> int:
    """Beat: evaluate threshold and schedule rules."""
    from .checks import rules_evaluate

    return rules_evaluate()


@shared_task(base=PortalTask, name="alerts.purge")
def purge_task() -> int:
    """Delete expired alerts and resolved alerts past the retention period (the daily schedule
    is apps.maintenance's `purge_alerts`, which records each run)."""
    from .services import alerts_purge

    return alerts_purge()


@shared_task(base=PortalTask, name="alerts.daily_summary")
def daily_summary_task() -> int:
    """Beat: one summary per staff member with alerts in the last 24 hours."""
    from .services import alerts_daily_summary

    return alerts_daily_summary()


@shared_task(base=PortalTask, name="alerts.remind_silences")
def remind_silences_task() -> int:
    """Beat: remind creators of silences about to expire."""
    from .services import silences_remind

    return silences_remind()


@shared_task(base=PortalTask, name="alerts.check_workload")
def check_workload_task() -> list[int]:
    """Beat: alert on agents over the workload threshold; resolve those back under it."""
    from .checks import check_workload_all

    return list(check_workload_all())


@shared_task(base=PortalTask, name="alerts.check_high_priority_queue")
def check_high_priority_queue_task() -> list[int]:
    """Beat: alert when a tenant's high-priority tickets pile up unassigned; resolve when not."""
    from .checks import check_high_priority_queue_all

    return list(check_high_priority_queue_all())


@shared_task(base=PortalTask, name="alerts.check_unassigned_critical")
def check_unassigned_critical_task() -> list[int]:
    """Beat: alert on critical tickets unassigned for too long; resolve assigned ones."""
    from .checks import check_unassigned_critical_all

    return list(check_unassigned_critical_all())
