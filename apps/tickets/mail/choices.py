"""Choices of the ticket mail package."""

from django.db import models


class MailboxKind(models.TextChoices):
    IMAP = "imap", "IMAP polling"
    SMTP = "smtp", "SMTP/LMTP receiver"


class ImapSecurity(models.TextChoices):
    SSL = "ssl", "TLS (IMAPS, port 993)"
    STARTTLS = "starttls", "STARTTLS (port 143)"
    PLAIN = "plain", "None (loopback or trusted network only)"


class UnknownSenders(models.TextChoices):
    REFUSE = "refuse", "Refuse"
    UNVERIFIED = "unverified", "Open as unverified"


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class Outcome(models.TextChoices):
    CREATED = "created", "Opened a ticket"
    THREADED = "threaded", "Added to a ticket"
    IGNORED = "ignored", "Ignored (auto-reply, bounce or loop)"
    DUPLICATE = "duplicate", "Duplicate"
    REFUSED = "refused", "Refused"
    SENT = "sent", "Sent"
    FAILED = "failed", "Sending failed"
