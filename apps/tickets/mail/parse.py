"""Reading one raw mail into what the ticket services need: sender, subject, text, thread ids,
attachments, and whether it is an auto-reply, a bounce or a loop. Pure functions; no ORM."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.utils.html import strip_tags

TICKET_NUMBER_RE = re.compile(r"\[?\b(TCK-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8})\b\]?")
MSGID_RE = re.compile(r"<([^<>\s]{1,250})>")
REPLY_MARKER = "-- Reply above this line --"
OUR_MSGID_PREFIX = "opsportal."
MAX_ATTACHMENTS = 20


class MailRefused(Exception):
    """A mail the portal will not take; the message says why (stored and logged)."""


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    sender: str
    sender_name: str
    subject: str
    text: str
    message_id: str
    in_reply_to: list[str]
    references: list[str]
    recipients: list[str]
    auto_reason: str = ""  # non-empty: an auto-reply, bounce or loop, with why
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def thread_ids(self) -> list[str]:
        return [*self.in_reply_to, *reversed(self.references)]

    def ticket_number(self) -> str | None:
        found = TICKET_NUMBER_RE.search(self.subject)
        return found.group(1) if found else None


def msg_ids(value) -> list[str]:
    return MSGID_RE.findall(str(value or ""))[:50]


def is_our_message_id(message_id: str) -> bool:
    return message_id.startswith(OUR_MSGID_PREFIX) and message_id.endswith("@" + settings.TICKETS_MAIL_DOMAIN)


def parse(raw: bytes, *, own_addresses: frozenset[str] = frozenset()) -> ParsedMail:
    """Parse and check one mail; raises MailRefused naming the problem (size, NUL bytes, too
    many recipients, no usable sender, undecodable)."""
    limit = settings.TICKETS_MAIL_MAX_BYTES
    if len(raw) > limit:
        raise MailRefused(f"The mail is {len(raw)} bytes; the limit is {limit} bytes.")
    if b"\x00" in raw:
        raise MailRefused("The mail contains NUL bytes; it is not a valid message.")
    if not raw.strip():
        raise MailRefused("The mail is empty.")
    try:
        msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)
        return _read(msg, own_addresses)
    except MailRefused:
        raise
    except (ValueError, TypeError, LookupError, IndexError, AttributeError, UnicodeError) as exc:
        raise MailRefused(f"The mail cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _header(msg, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else str(value).strip()


def _read(msg: EmailMessage, own: frozenset[str]) -> ParsedMail:
    name, sender = parseaddr(_header(msg, "From"))
    sender = sender.strip().lower()
    if not sender or "@" not in sender or len(sender) > 254:
        raise MailRefused("The mail has no usable From address.")
    try:
        Address(addr_spec=sender)
    except (ValueError, IndexError) as exc:
        raise MailRefused(f"The From address {sender[:100]!r} is not valid.") from exc
    recipients = [a.lower() for _, a in getaddresses([_header(msg, h) for h in ("To", "Cc")]) if a]
    most = settings.TICKETS_MAIL_MAX_RECIPIENTS
    if len(recipients) > most:
        raise MailRefused(f"The mail has {len(recipients)} recipients; at most {most} are accepted.")
    subject = " ".join(_header(msg, "Subject").split())[:200] or "(no subject)"
    ids = msg_ids(_header(msg, "Message-ID"))
    parsed = ParsedMail(
        sender=sender,
        sender_name=name[:100],
        subject=subject,
        text="",
        message_id=ids[0] if ids else "",
        in_reply_to=msg_ids(_header(msg, "In-Reply-To")),
        references=msg_ids(_header(msg, "References")),
        recipients=recipients,
    )
    parsed.auto_reason = _auto_reason(msg, parsed, own)
    if parsed.auto_reason:
        return parsed  # nothing else is read from mail that is dropped
    parsed.text = _text(msg)
    if "\x00" in parsed.text:
        raise MailRefused("The mail's text contains NUL characters.")
    parsed.attachments = _attachments(msg)
    return parsed


def _auto_reason(msg, parsed: ParsedMail, own: frozenset[str]) -> str:
    """Why this mail is automatic (RFC 3834 Auto-Submitted, Precedence, X-Loop, bounces, our own
    Message-IDs, mail from our own addresses), or ''."""
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto[:60]}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    loop = _header(msg, "X-Loop").lower()
    if loop and (loop in own or settings.TICKETS_MAIL_DOMAIN in loop):
        return f"X-Loop: {loop[:100]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        value = _header(msg, name).lower()
        if value and (name != "X-Auto-Response-Suppress" or any(v in value for v in ("all", "autoreply"))):
            return f"{name}: {value[:60]}"
    if msg.get_content_type() == "multipart/report" or _header(msg, "Return-Path") == "<>":
        return "delivery report (bounce)"
    local = parsed.sender.split("@", 1)[0]
    if local in ("mailer-daemon", "postmaster"):
        return f"sent by {local} (bounce)"
    if parsed.sender in own:
        return "sent from one of our own mailboxes (loop)"
    if parsed.message_id and is_our_message_id(parsed.message_id):
        return "carries one of our own Message-IDs (loop)"
    return ""


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = strip_tags(content)
    text = content.replace("\r\n", "\n")
    if REPLY_MARKER in text:  # our reply template: keep what the customer wrote above the marker
        text = text.split(REPLY_MARKER, 1)[0].rstrip().rstrip(">").rstrip()
    return text.strip()[: settings.TICKETS_MAIL_MAX_TEXT]


def _attachments(msg: EmailMessage) -> list[Attachment]:
    found = []
    for part in msg.iter_attachments():
        if len(found) >= MAX_ATTACHMENTS:
            break
        if part.is_multipart():
            continue
        name = (part.get_filename() or "attachment").replace("\x00", "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip()[:200]
        data = part.get_payload(decode=True) or b""
        found.append(Attachment(filename=name or "attachment", content_type=part.get_content_type(), data=data))
    return found
