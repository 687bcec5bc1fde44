"""Celery entry points of ticket mail: the beat fan-out over IMAP mailboxes, one mailbox's poll,
and one reply's sending."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from apps.core.tasks import TRANSIENT_ERRORS, PortalTask


@shared_task(base=PortalTask, name="tickets.mail_poll_all")
def mail_poll_all_task() -> int:
    """Beat: queue a poll of every active IMAP mailbox of an active tenant."""
    from .services import mailboxes_due

    ids = mailboxes_due()
    for pk in ids:
        mail_poll_task.delay(pk)
    return len(ids)


@shared_task(base=PortalTask, name="tickets.mail_poll", autoretry_for=())
def mail_poll_task(mailbox_id: int) -> dict | None:
    """Poll one mailbox; a poll already running for it (claimed in the cache) makes this a no-op.
    Not retried: the next beat tick polls again, and the error is on the mailbox row."""
    from .services import mailbox_poll

    key = f"tickets:mail-poll:{mailbox_id}"
    if not cache.add(key, 1, timeout=settings.TICKETS_MAIL_POLL_SECONDS * 5):
        return None
    try:
        return mailbox_poll(mailbox_id=mailbox_id)
    except Exception:
        return None  # stored on the mailbox (last_error) and logged by the service
    finally:
        cache.delete(key)


@shared_task(base=PortalTask, name="tickets.mail_reply_send", autoretry_for=(*TRANSIENT_ERRORS, OSError))
def mail_reply_send_task(ticket_message_id: int) -> str | None:
    """Mail one public reply (idempotent: a reply already sent is not sent again); SMTP errors
    are retried with backoff."""
    from .services import mail_reply_send

    row = mail_reply_send(ticket_message_id=ticket_message_id)
    return row.message_id if row else None
