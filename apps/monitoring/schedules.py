from django.conf import settings

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="monitoring: dispatch due checks",
        task="monitoring.dispatch_due_checks",
        every_seconds=settings.MONITORING_DISPATCH_EVERY_SECONDS,
        queue="monitoring",
        expire_seconds=max(5, settings.MONITORING_DISPATCH_EVERY_SECONDS),  # as core.dispatch_due's
        description="Claim every endpoint whose next check is due and check them in concurrent batches.",
    ),
    Schedule(
        name="monitoring: evaluate trend rules",
        task="monitoring.evaluate_trends",
        every_seconds=settings.MONITORING_TREND_EVERY_SECONDS,
        queue="monitoring",
        description="Latency p95 over budget, TLS certificates expiring soon: publish breaches and recoveries.",
    ),
]
