"""Events ticket mail reacts to: a public staff reply on a ticket that came by email is mailed
to the customer (internal notes and customer messages never are)."""

from __future__ import annotations

from apps.core.events import subscribe


@subscribe("ticket.message_added")
def mail_public_reply(event) -> None:
    from ..models import Ticket
    from .services import reply_wanted
    from .tasks import mail_reply_send_task

    payload = event.payload or {}
    if reply_wanted(payload) and Ticket.objects.filter(pk=payload.get("id"), metadata__has_key="email").exists():
        mail_reply_send_task.delay(payload["message_id"])
