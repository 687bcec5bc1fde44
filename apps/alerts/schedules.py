"""Periodic schedules of the alerts app (synced to django-celery-beat by setup_periodic_tasks).

The ticket-reading checks (agent workload, unassigned critical tickets) are not scheduled yet:
their functions are in checks.py and get wired to apps.tickets.selectors at integration."""

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(name="alerts: escalate unacknowledged alerts", task="alerts.escalate_due", every_seconds=60),
    Schedule(name="alerts: auto-resolve stale alerts", task="alerts.auto_resolve", every_seconds=60),
    Schedule(name="alerts: evaluate threshold and schedule rules", task="alerts.evaluate_rules", every_seconds=60),
    Schedule(name="alerts: remind expiring silences", task="alerts.remind_silences", every_seconds=300),
    Schedule(name="alerts: purge expired alerts", task="alerts.purge", crontab="17 3 * * *"),
    Schedule(name="alerts: daily summary", task="alerts.daily_summary", crontab="0 7 * * *"),
]
