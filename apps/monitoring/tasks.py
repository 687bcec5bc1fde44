"""Celery entry points of monitoring (routed to the `monitoring` queue)."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="monitoring.dispatch_due_checks", autoretry_for=())
def dispatch_due_checks_task() -> int:
    """Beat, every few seconds: claim every due endpoint and enqueue them as check batches.
    Not retried: the next tick claims whatever is due then."""
    from .services import checks_claim_due

    claimed = checks_claim_due()
    size = settings.MONITORING_BATCH_SIZE
    for start in range(0, len(claimed), size):
        chunk = claimed[start:start + size]
        check_batch_task.delay([c[0] for c in chunk], {str(c[0]): c[2].isoformat() for c in chunk})
    return len(claimed)


@shared_task(base=PortalTask, name="monitoring.check_batch", autoretry_for=())
def check_batch_task(endpoint_ids: list[int], scheduled: dict[str, str] | None = None) -> int:
    """Check a batch of claimed endpoints concurrently and record the results in bulk. Not
    retried: a retry would check late; the claim already scheduled each endpoint's next check."""
    from .services import checks_run_batch

    when = {int(k): datetime.fromisoformat(v) for k, v in (scheduled or {}).items()}
    return len(checks_run_batch(endpoint_ids=endpoint_ids, scheduled=when))


@shared_task(base=PortalTask, name="monitoring.check_endpoint")
def check_endpoint_task(endpoint_id: int) -> str | None:
    """Check one endpoint now ("check now" from the admin/API, on a worker)."""
    from .models import Endpoint
    from .services import endpoint_check_now

    endpoint = Endpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None or endpoint.kind == "heartbeat":
        return None
    return endpoint_check_now(endpoint, actor=None).status


@shared_task(base=PortalTask, name="monitoring.evaluate_trends", autoretry_for=())
def evaluate_trends_task() -> dict:
    """Beat, every MONITORING_TREND_EVERY_SECONDS: evaluate every enabled trend rule and publish
    breaches and recoveries. Not retried: the next tick evaluates again."""
    from .services import trend_rules_evaluate

    return trend_rules_evaluate()
