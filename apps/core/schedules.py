from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="core: sweep events outbox",
        task="core.sweep_events",
        every_seconds=30,
        description="Dispatch events that the broker lost or whose retry is due.",
    ),
    Schedule(
        name="core: dispatch due schedules",
        task="core.dispatch_due",
        every_seconds=1,
        queue="jobs",
        # a tick claims all that is due whenever it runs: a stale one adds nothing. A few ticks, not
        # one: a beat/worker clock skew or a short queue wait must not drop every tick.
        expire_seconds=5,
        description="Claim every deployment and job schedule due within the next seconds and send their fires (eta = due time). "
                    "Pausing it pauses all of them.",
    ),
]
