from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="notifications: sweep deliveries",
        task="notifications.sweep_deliveries",
        every_seconds=30,
        queue="notifications",
        description="Re-queue pending deliveries lost by a broker outage or a dead worker, and retries whose backoff passed.",
    ),
    Schedule(
        name="notifications: send digests",
        task="notifications.send_digests",
        crontab="*/5 * * * *",
        queue="notifications",
        description="Send hourly digests at the full hour and daily digests at the recipient's local digest hour.",
    ),
]
