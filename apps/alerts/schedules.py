"""Periodic schedules of the alerts app (synced to django-celery-beat by setup_periodic_tasks)."""

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(name="alerts: escalate unacknowledged alerts", task="alerts.escalate_due", every_seconds=60),
    Schedule(name="alerts: auto-resolve stale alerts", task="alerts.auto_resolve", every_seconds=60),
    Schedule(name="alerts: evaluate threshold and schedule rules", task="alerts.evaluate_rules", every_seconds=60),
    Schedule(name="alerts: remind expiring silences", task="alerts.remind_silences", every_seconds=300),
    Schedule(name="alerts: daily summary", task="alerts.daily_summary", crontab="0 7 * * *"),
    Schedule(name="alerts: agent workload over threshold", task="alerts.check_workload", every_seconds=600),
    Schedule(name="alerts: critical tickets unassigned too long", task="alerts.check_unassigned_critical", every_seconds=300),
    Schedule(name="alerts: high-priority items in queue", task="alerts.check_high_priority_queue", every_seconds=300),
]
