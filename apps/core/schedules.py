from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="core: sweep events outbox",
        task="core.sweep_events",
        every_seconds=30,
        description="Dispatch events that the broker lost or whose retry is due.",
    ),
]
