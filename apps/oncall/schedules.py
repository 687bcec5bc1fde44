from django.conf import settings

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="oncall: check gaps",
        task="oncall.check_gaps",
        every_seconds=settings.ONCALL_CHECK_EVERY_SECONDS,
        description="Nobody on call within the next 7 days of a schedule: an alert and a notification to its owners.",
    ),
    Schedule(
        name="oncall: shift start/end notices",
        task="oncall.notify_shifts",
        every_seconds=60,
        description="Tell the person on call when their shift starts and ends.",
    ),
]
