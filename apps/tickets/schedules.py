from django.conf import settings

from apps.core.periodic import Schedule

SCHEDULES = [
    Schedule(
        name="tickets: SLA sweep",
        task="tickets.sla_sweep",
        every_seconds=settings.TICKETS_SLA_SWEEP_SECONDS,
        description="Mark at-risk and breached tickets and publish ticket.sla_at_risk / ticket.sla_breached.",
    ),
    Schedule(
        name="tickets: poll mailboxes",
        task="tickets.mail_poll_all",
        every_seconds=settings.TICKETS_MAIL_POLL_SECONDS,
        description="Fetch new mail of every active IMAP ticket mailbox into tickets and replies (docs/email.md).",
    ),
]
