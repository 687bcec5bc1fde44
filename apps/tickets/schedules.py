from django.conf import settings

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="tickets: SLA sweep",
        task="tickets.sla_sweep",
        every_seconds=settings.TICKETS_SLA_SWEEP_SECONDS,
        description="Mark at-risk and breached tickets and publish ticket.sla_at_risk / ticket.sla_breached.",
    ),
]
