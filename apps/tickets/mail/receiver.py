"""The SMTP/LMTP receiver: an aiosmtpd server the MTA delivers to. RCPT is checked against the
receiver mailboxes (unknown address: 550), size and recipient count are limited at the protocol
(552 / 452), and DATA is handed to `mail_ingest` in a worker thread (the ORM never runs on the
event loop). A refused mail is answered 550 with the reason; ignored auto-replies get 250."""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from django.conf import settings
from django.db import close_old_connections, connection

from .choices import Outcome

log = logging.getLogger("apps.tickets.mail")


def _in_worker(func, *args):
    """Run ORM work in an executor thread with a connection of its own, closed afterwards (the
    thread outlives the session; an idle connection left in it would outlive the receiver)."""
    close_old_connections()
    try:
        return func(*args)
    finally:
        connection.close()


def _lookup(address: str):
    from .services import mailbox_for_address

    return mailbox_for_address(address)


def _ingest(mailbox_ids: list[int], raw: bytes) -> list[tuple[str, str]]:
    from .models import Mailbox
    from .services import mail_ingest, own_addresses

    own = own_addresses()
    results = []
    for box in Mailbox.objects.filter(pk__in=mailbox_ids).select_related("tenant"):
        row = mail_ingest(mailbox=box, raw=raw, own=own)
        results.append((row.outcome, row.reason))
    return results


class MailHandler:
    """aiosmtpd handler: the portal's side of one SMTP/LMTP session."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= settings.TICKETS_MAIL_MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        box = await asyncio.get_running_loop().run_in_executor(None, _in_worker, _lookup, address)
        if box is None:
            return "550 5.1.1 No ticket mailbox at this address"
        envelope.rcpt_tos.append(address)
        envelope.__dict__.setdefault("mailbox_ids", []).append(box.pk)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        ids = sorted(set(getattr(envelope, "mailbox_ids", [])))
        try:
            results = await asyncio.get_running_loop().run_in_executor(None, _in_worker, _ingest, ids, raw)
        except Exception:
            log.exception("receiver: ingesting a mail failed")
            return "451 4.3.0 Temporary failure; try again later"
        refused = [reason for outcome, reason in results if outcome == Outcome.REFUSED]
        if refused and len(refused) == len(results):
            text = " ".join(refused[0].split())[:200].encode("ascii", "replace").decode()
            return f"550 5.7.1 {text}"
        return "250 2.0.0 Message accepted"


class ReceiverController(Controller):
    """aiosmtpd's threaded controller, speaking SMTP or (lmtp=True) LMTP."""

    def __init__(self, *, hostname: str, port: int, lmtp: bool = False):
        self.lmtp = lmtp
        super().__init__(MailHandler(), hostname=hostname, port=port, ready_timeout=10)

    def factory(self):
        cls = LMTP if self.lmtp else SMTP
        return cls(
            self.handler,
            data_size_limit=settings.TICKETS_MAIL_MAX_BYTES,
            decode_data=False,
            hostname=settings.TICKETS_MAIL_DOMAIN,
            ident="opsportal ticket mail",
        )
