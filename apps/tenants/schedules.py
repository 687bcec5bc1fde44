from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="tenants: execute due deletion requests",
        task="tenants.execute_due_deletions",
        every_seconds=3600,
        description="Erase the personal data of customers whose 30-day deletion grace period is over.",
    ),
    Schedule(
        name="tenants: sweep data exports",
        task="tenants.sweep_data_exports",
        every_seconds=900,
        description="Delete expired export files; re-queue exports whose build task was lost.",
    ),
]
