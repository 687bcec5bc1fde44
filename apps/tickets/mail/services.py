"""Ticket mail services: a mailbox's configuration, one inbound mail turned into a ticket or a
reply (`mail_ingest`, the one path for IMAP polling, the SMTP/LMTP receiver and the benchmark),
IMAP polling, and a public reply sent back by email. Entry points call these."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.core.choices import OrgKind, Role
from apps.core.crypto import PLACEHOLDER, encrypt
from apps.core.policy import policy
from apps.core.services import assign_tenant
from apps.core.tenancy import choose_organization
from apps.tenants.choices import OrgStatus
from apps.tenants.models import Membership

from .. import services as tickets
from ..choices import ActorType, TicketStatus
from ..models import STAFF_WORKERS, Ticket, TicketMessage
from .choices import Direction, MailboxKind, Outcome, UnknownSenders
from .models import Mailbox, MailMessage
from .parse import MailRefused, ParsedMail, parse

log = logging.getLogger("apps.tickets.mail")


# -- mailbox configuration ------------------------------------------------------------------
def mailbox_save(instance: Mailbox | None = None, *, actor, imap_password: str | None = None, **data) -> Mailbox:
    """Create or update a mailbox; the IMAP password is sealed (apps/core/crypto.py), the
    placeholder or None keeps the stored one."""
    from apps.core.audit import config_change

    box = instance or Mailbox()
    for key, value in data.items():
        setattr(box, key, value)
    assign_tenant(box, actor=actor)
    allowed = policy.allows_object(actor, "change", box) if box.pk else policy.allows(actor, "add", Mailbox)
    if actor is not None and not allowed:
        raise PermissionDenied("Your role does not allow configuring mailboxes.")
    if imap_password not in (None, "", PLACEHOLDER):
        if "\x00" in imap_password or len(imap_password) > 1000:
            raise ValidationError({"imap_password": "The password holds a NUL byte or is longer than 1000 characters."})
        box.imap_password = encrypt(imap_password)
    if box.kind == MailboxKind.IMAP and not box.imap_password:
        raise ValidationError({"imap_password": "An IMAP mailbox needs the password to log in with."})
    with transaction.atomic(), config_change(box, actor=actor):
        box.full_clean()
        box.save()
    return box


def mailbox_delete(instance: Mailbox, *, actor) -> None:
    """Remove a mailbox and its mail log (tickets and their messages stay)."""
    from apps.core.audit import config_deleted

    if actor is not None and not policy.allows_object(actor, "delete", instance):
        raise PermissionDenied("Your role does not allow removing mailboxes.")
    with transaction.atomic():
        config_deleted(instance, actor=actor)
        instance.delete()


# -- who wrote ------------------------------------------------------------------------------
@dataclass
class Sender:
    kind: str  # customer | staff | member | foreign | unknown
    user: object = None
    organization_id: int | None = None


def _resolve_sender(tenant_id: int, address: str) -> Sender:
    """A customer user of one of this tenant's customer organizations, a staff member of the
    tenant, someone known only to another tenant (foreign), or unknown. One query."""
    rows = list(
        Membership.objects.filter(user__email__iexact=address, user__is_active=True, is_active=True)
        .select_related("user", "organization")
        .order_by("pk")[:20]
    )
    for m in rows:
        org = m.organization
        if org.kind == OrgKind.CUSTOMER and org.parent_id == tenant_id and m.role == Role.CUSTOMER:
            return Sender("customer", m.user, org.pk)
    for m in rows:
        if m.organization_id == tenant_id and m.role in STAFF_WORKERS:
            return Sender("staff", m.user, tenant_id)
    if any(m.organization_id != tenant_id and m.organization.parent_id != tenant_id for m in rows):
        return Sender("foreign")
    if rows:
        return Sender("member")  # a member of this tenant without a customer or support role
    return Sender("unknown")


def _as(user, organization_id: int):
    """A fresh copy of the user acting within one organization (the memo is per object)."""
    user = get_user_model().objects.get(pk=user.pk) if getattr(user, "_portal_acting", None) else user
    choose_organization(user, organization_id)
    return user


# -- inbound --------------------------------------------------------------------------------
def own_addresses() -> frozenset[str]:
    """Every mailbox address: mail from one of them is a loop."""
    return frozenset(Mailbox.objects.values_list("address", flat=True))


class _Refusal(Exception):
    pass


def _files(parsed: ParsedMail) -> tuple[list, list[str]]:
    """Attachments within the ticket attachment limits (the same check as uploads), and a note
    for each one left out."""
    kept, left = [], []
    for att in parsed.attachments:
        upload = SimpleUploadedFile(att.filename, att.data, content_type=att.content_type)
        try:
            tickets.validate_attachment(upload)
        except ValidationError as exc:
            left.append("; ".join(exc.messages))
            continue
        kept.append(upload)
    return kept, left


def _body(parsed: ParsedMail, left: list[str], kept: list) -> str:
    text = parsed.text or ("(no text; see the attachments)" if kept else "(the mail had no text)")
    if left:
        text += "\n\n[Attachments not kept: " + " | ".join(left) + "]"
    return text


def _thread(mailbox: Mailbox, parsed: ParsedMail) -> Ticket | None:
    """The ticket a reply belongs to: a Message-ID it answers (ours or an earlier inbound one),
    else the ticket number in the subject; only tickets of the mailbox's tenant."""
    ids = parsed.thread_ids
    if ids:
        row = (
            MailMessage.objects.filter(tenant_id=mailbox.tenant_id, message_id__in=ids, ticket__isnull=False)
            .select_related("ticket")
            .order_by("-created_at")
            .first()
        )
        if row is not None:
            return row.ticket
    number = parsed.ticket_number()
    if number:
        return Ticket.objects.filter(tenant_id=mailbox.tenant_id, number=number).first()
    return None


def _open(mailbox: Mailbox, sender: Sender, parsed: ParsedMail, *, received_at, follow_up_of: str = ""):
    kept, left = _files(parsed)
    meta = {"email": {"from": parsed.sender, "mailbox": mailbox.pk, "verified": sender.kind == "customer"}}
    if follow_up_of:
        meta["email"]["follow_up_of"] = follow_up_of
    common = dict(
        subject=parsed.subject, message=_body(parsed, left, kept), attachments=kept, metadata=meta, sla_started_at=received_at
    )
    if sender.kind == "customer":
        ticket = tickets.ticket_create(actor=_as(sender.user, sender.organization_id), **common)
    elif sender.kind == "unknown" and mailbox.unknown_senders == UnknownSenders.UNVERIFIED:
        ticket = tickets.ticket_create(
            actor=None, tenant=mailbox.tenant_id, target_type=ActorType.TENANT, tags=["email-unverified"], **common
        )
    elif sender.kind == "staff":
        raise _Refusal(f"{parsed.sender} is staff of this tenant: staff open tickets in the portal (replies by email thread in).")
    elif sender.kind == "foreign":
        raise _Refusal(f"{parsed.sender} belongs to another tenant; this mailbox takes mail from its own customers only.")
    elif sender.kind == "member":
        raise _Refusal(f"{parsed.sender} has no customer or support role in this tenant.")
    else:
        raise _Refusal(f"{parsed.sender} is not a customer of this tenant, and the mailbox refuses unknown senders.")
    return ticket, ticket.creation.message, Outcome.CREATED, left


def _reply(mailbox: Mailbox, ticket: Ticket, sender: Sender, parsed: ParsedMail, *, received_at):
    opener = (ticket.metadata.get("email") or {}).get("from") if isinstance(ticket.metadata, dict) else None
    if sender.kind == "customer" and sender.organization_id == ticket.customer_id or sender.kind == "staff":
        actor, as_customer = _as(sender.user, sender.organization_id), False
    elif ticket.customer_id is None and ticket.created_by_id is None and opener == parsed.sender:
        actor, as_customer = None, True  # the unverified sender who opened it
    else:
        raise _Refusal(f"{parsed.sender} is not a party of ticket {ticket.number}; the reply was not added.")
    if ticket.status == TicketStatus.CLOSED and (as_customer or sender.kind == "customer"):
        return _open(
            mailbox, sender if not as_customer else Sender("unknown"), parsed, received_at=received_at, follow_up_of=ticket.number
        )
    kept, left = _files(parsed)
    msg = tickets.ticket_reply(ticket, actor=actor, body=_body(parsed, left, kept), attachments=kept, as_customer=as_customer)
    return ticket, msg, Outcome.THREADED, left


def _record(
    mailbox: Mailbox,
    parsed: ParsedMail | None,
    *,
    outcome: str,
    reason: str = "",
    size: int,
    message_id: str = "",
    ticket=None,
    ticket_message=None,
) -> MailMessage:
    row = MailMessage(
        tenant_id=mailbox.tenant_id,
        mailbox=mailbox,
        direction=Direction.INBOUND,
        outcome=outcome,
        reason=reason[:2000],
        size=size,
        message_id=(parsed.message_id if parsed else message_id)[:255] or message_id[:255],
        in_reply_to=(parsed.in_reply_to[0] if parsed and parsed.in_reply_to else "")[:255],
        sender=(parsed.sender if parsed else "")[:255],
        subject=(parsed.subject if parsed else "")[:300],
        recipients=", ".join(parsed.recipients)[:5000] if parsed else "",
        ticket=ticket,
        ticket_message=ticket_message,
    )
    row.save(force_insert=True)
    return row


def mail_ingest(
    *, mailbox: Mailbox, raw: bytes, received_at: datetime | None = None, own: frozenset[str] | None = None
) -> MailMessage:
    """Turn one raw mail into a ticket (new mail from a customer), a reply (threaded by
    In-Reply-To/References or the number in the subject), or nothing with the reason recorded:
    auto-replies, bounces and loops are ignored (never open or reopen a ticket); refused mail
    (malformed, oversized, too many recipients, NUL bytes, a stranger when the mailbox refuses
    them, another tenant's customer) leaves only its log row. Mail already taken (same
    Message-ID) is not taken twice. The ticket, its message, attachments and the log row are
    written in one transaction."""
    size = len(raw)
    try:
        parsed = parse(raw, own_addresses=own if own is not None else own_addresses())
    except MailRefused as exc:
        log.warning("mailbox %s: refused a mail of %d bytes: %s", mailbox.address, size, exc)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        return _record(mailbox, None, outcome=Outcome.REFUSED, reason=str(exc), size=size, message_id=digest)
    if not parsed.message_id:
        parsed.message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    earlier = MailMessage.objects.filter(mailbox=mailbox, direction=Direction.INBOUND, message_id=parsed.message_id[:255]).first()
    if earlier is not None:
        log.info("mailbox %s: %s was taken before (%s)", mailbox.address, parsed.message_id, earlier.outcome)
        return earlier
    if parsed.auto_reason:
        log.info("mailbox %s: ignored %s from %s: %s", mailbox.address, parsed.message_id, parsed.sender, parsed.auto_reason)
        return _record(mailbox, parsed, outcome=Outcome.IGNORED, reason=parsed.auto_reason, size=size)
    try:
        with transaction.atomic():
            sender = _resolve_sender(mailbox.tenant_id, parsed.sender)
            ticket = _thread(mailbox, parsed)
            if ticket is not None:
                ticket, msg, outcome, left = _reply(mailbox, ticket, sender, parsed, received_at=received_at)
            else:
                ticket, msg, outcome, left = _open(mailbox, sender, parsed, received_at=received_at)
            return _record(mailbox, parsed, outcome=outcome, size=size, ticket=ticket, ticket_message=msg, reason="; ".join(left))
    except IntegrityError as exc:
        if "tickets_mail_once" not in str(exc):
            raise
        return MailMessage.objects.get(mailbox=mailbox, direction=Direction.INBOUND, message_id=parsed.message_id[:255])
    except (_Refusal, ValidationError, PermissionDenied) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        log.warning("mailbox %s: refused %s from %s: %s", mailbox.address, parsed.message_id, parsed.sender, reason)
        return _record(mailbox, parsed, outcome=Outcome.REFUSED, reason=reason, size=size)


def mailbox_for_address(address: str) -> Mailbox | None:
    """The active receiver mailbox (kind smtp) of an envelope recipient."""
    return (
        Mailbox.objects.filter(address=(address or "").strip().lower(), kind=MailboxKind.SMTP, is_active=True)
        .select_related("tenant")
        .first()
    )


# -- IMAP polling ---------------------------------------------------------------------------
def _imap_client(box: Mailbox):
    from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted

    from .choices import ImapSecurity

    timeout = settings.TICKETS_MAIL_IMAP_TIMEOUT
    if box.imap_security == ImapSecurity.SSL:
        return MailBox(box.imap_host, box.imap_port, timeout=timeout)
    if box.imap_security == ImapSecurity.STARTTLS:
        return MailBoxStartTls(box.imap_host, box.imap_port, timeout=timeout)
    return MailBoxUnencrypted(box.imap_host, box.imap_port, timeout=timeout)


def _raw_message_class():
    from imap_tools import MailMessage as ImapMessage

    class RawMessage(ImapMessage):
        """Only the UID and the raw bytes: the portal parses the mail itself, once."""

        def __init__(self, fetch_data):
            self.raw, self._raw_uid_data, self._raw_flag_data = self._get_message_data_parts(fetch_data)

    return RawMessage


def _ingest_one(box: Mailbox, raw: bytes, own: frozenset[str]) -> MailMessage:
    """One polled mail; a mail that fails for a reason other than the database is recorded as
    refused (and flagged seen with the rest), so one poison message cannot stall the mailbox."""
    try:
        return mail_ingest(mailbox=box, raw=raw, own=own)
    except (OperationalError, InterfaceError):
        raise  # the database is away: leave the mail unseen for the next poll
    except Exception as exc:
        log.exception("mailbox %s: a mail of %d bytes could not be processed", box.address, len(raw))
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if MailMessage.objects.filter(mailbox=box, direction=Direction.INBOUND, message_id=digest).exists():
            return MailMessage.objects.get(mailbox=box, direction=Direction.INBOUND, message_id=digest)
        return _record(
            box,
            None,
            outcome=Outcome.REFUSED,
            size=len(raw),
            message_id=digest,
            reason=f"The mail could not be processed ({type(exc).__name__}); see the log.",
        )


def mailbox_poll(*, mailbox_id: int, actor=None, batch: int | None = None) -> dict:
    """Fetch the unseen mail of one IMAP mailbox (up to `batch`), ingest each, and flag them
    seen on the server once taken; a mail taken twice (a crash before the flag) is recognised by
    its Message-ID. Connection and login errors are stored on the mailbox and raised."""
    from imap_tools import AND, MailMessageFlags

    box = Mailbox.objects.select_related("tenant").get(pk=mailbox_id)
    if actor is not None and not policy.allows_object(actor, "poll", box):
        raise PermissionDenied("Your role does not allow polling this mailbox.")
    if box.kind != MailboxKind.IMAP or not box.is_active:
        raise ValidationError({"mailbox": f"{box} is not an active IMAP mailbox."})
    batch = batch or settings.TICKETS_MAIL_POLL_BATCH
    counts = {o.value: 0 for o in Outcome}
    own = own_addresses()
    try:
        with _imap_client(box).login(box.imap_username, box.get_secret(), initial_folder=box.imap_folder) as client:
            client.email_message_class = _raw_message_class()
            uids = list(client.uids(AND(seen=False)))[:batch]
            taken = []
            for message in client.fetch(uid_list=uids, mark_seen=False, bulk=50) if uids else ():
                row = _ingest_one(box, message.raw, own)
                counts[row.outcome] += 1
                taken.append(message.uid)
                if len(taken) >= 100:
                    client.flag(taken, MailMessageFlags.SEEN, True)
                    taken = []
            if taken:
                client.flag(taken, MailMessageFlags.SEEN, True)
    except Exception as exc:  # socket, TLS, login and IMAP errors: stored on the mailbox for the admin
        error = f"{type(exc).__name__}: {exc}"[:2000]
        Mailbox.objects.filter(pk=box.pk).update(last_error=error, last_polled_at=timezone.now())
        log.warning("mailbox %s: polling failed: %s", box.address, error)
        raise
    Mailbox.objects.filter(pk=box.pk).update(last_error="", last_polled_at=timezone.now())
    counts["polled"] = sum(counts.values())
    return counts


def mailboxes_due() -> list[int]:
    return list(
        Mailbox.objects.filter(kind=MailboxKind.IMAP, is_active=True, tenant__status__in=[OrgStatus.TRIAL, OrgStatus.ACTIVE])
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# -- outbound -------------------------------------------------------------------------------
def reply_wanted(payload: dict) -> bool:
    """Whether a ticket.message_added event is a public staff reply (the only kind mailed)."""
    return not payload.get("is_internal") and payload.get("author_type") != ActorType.CUSTOMER and bool(payload.get("message_id"))


def reply_route(ticket: Ticket) -> tuple[str, Mailbox] | None:
    """Where a public staff reply on `ticket` is mailed: the address that opened it by email and
    the tenant's mailbox it came through; None when it did not come by email or the mailbox is gone."""
    meta = (ticket.metadata or {}).get("email") if isinstance(ticket.metadata, dict) else None
    if not meta or not meta.get("from"):
        return None
    box = Mailbox.objects.filter(pk=meta.get("mailbox"), tenant_id=ticket.tenant_id).first()
    return (meta["from"], box) if box is not None else None


def mail_reply_send(*, ticket_message_id: int) -> MailMessage | None:
    """Send a public staff reply to the address that opened the ticket by email, from the
    ticket's mailbox, with headers that thread in the customer's client (Message-ID,
    In-Reply-To, References) and mark it ours (X-Loop). Internal notes, customer messages and
    tickets that did not come by email send nothing; a reply is sent once."""
    from django.core.mail import EmailMessage, get_connection
    from django.core.mail.message import make_msgid

    from .parse import OUR_MSGID_PREFIX, REPLY_MARKER

    msg = TicketMessage.objects.select_related("ticket", "ticket__tenant", "author").filter(pk=ticket_message_id).first()
    if msg is None or msg.is_internal or msg.author_type == ActorType.CUSTOMER:
        return None
    ticket = msg.ticket
    route = reply_route(ticket)
    if route is None:
        return None
    if MailMessage.objects.filter(ticket_message=msg, direction=Direction.OUTBOUND, outcome=Outcome.SENT).exists():
        return None
    to, box = route
    thread = list(
        MailMessage.objects.filter(ticket=ticket)
        .exclude(outcome__in=[Outcome.REFUSED, Outcome.IGNORED, Outcome.FAILED])
        .exclude(message_id__startswith="sha256:")
        .order_by("created_at", "id")
        .values_list("message_id", "direction")
    )
    ids = [f"<{m}>" for m, _ in thread]
    last_in = [f"<{m}>" for m, d in thread if d == Direction.INBOUND]
    message_id = make_msgid(idstring=f"{ticket.number}.{msg.pk}", domain=settings.TICKETS_MAIL_DOMAIN)
    message_id = "<" + OUR_MSGID_PREFIX + message_id[1:]
    headers = {
        "Message-ID": message_id,
        "X-Loop": box.address,
        "X-Opsportal-Ticket": ticket.number,
        "Auto-Submitted": "no",
    }
    if last_in or ids:
        headers["In-Reply-To"] = (last_in or ids)[-1]
        headers["References"] = " ".join(ids[:1] + ids[-19:] if len(ids) > 20 else ids)
    subject = ticket.subject if ticket.number in ticket.subject else f"[{ticket.number}] {ticket.subject}"
    author = (msg.author.get_full_name() or msg.author.username) if msg.author else ticket.tenant.name
    body = f"{REPLY_MARKER}\n\n{msg.body}\n\n— {author}, {ticket.tenant.name}\nTicket {ticket.number}\n"
    email = EmailMessage(
        subject=f"Re: {subject}"[:300],
        body=body,
        from_email=f"{ticket.tenant.name} <{box.address}>",
        to=[to],
        headers=headers,
    )
    for att in msg.attachments.all()[:10]:
        with att.file.open("rb") as fh:
            email.attach(att.filename, fh.read(), att.content_type)
    row = MailMessage(
        tenant_id=ticket.tenant_id,
        mailbox=box,
        direction=Direction.OUTBOUND,
        message_id=message_id[1:-1][:255],
        in_reply_to=headers.get("In-Reply-To", "")[1:-1][:255],
        sender=box.address,
        recipients=to,
        subject=email.subject[:300],
        ticket=ticket,
        ticket_message=msg,
        outcome=Outcome.SENT,
    )
    try:
        get_connection(fail_silently=False).send_messages([email])
    except Exception as exc:  # smtplib's errors, refused connections, timeouts
        row.outcome, row.reason = Outcome.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        row.save()
        log.warning("ticket %s: reply %s not sent: %s", ticket.number, msg.pk, row.reason)
        raise
    row.size = len(email.message().as_bytes())
    row.save()
    return row
