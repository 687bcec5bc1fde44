"""Celery entry points of the tickets app."""

from celery import shared_task

from apps.core.tasks import PortalTask


@shared_task(base=PortalTask, name="tickets.sla_sweep")
def sla_sweep_task() -> dict:
    """Beat (every minute): flag at-risk and breached tickets set-based and publish their events.
    Idempotent: flagged rows are not selected again, and concurrent sweeps skip locked rows."""
    from .services import sla_sweep

    return sla_sweep()


from .mail.tasks import mail_poll_all_task, mail_poll_task, mail_reply_send_task  # noqa: E402,F401
