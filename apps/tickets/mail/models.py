"""Models of ticket mail: a tenant's inbound mailbox and the log of every mail in and out.

Imported into `apps/tickets/models.py` (app label `tickets`); foreign keys to tickets are strings
so this module never imports the tickets models it sits beside."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.core.choices import MANAGER_ROLES, Role
from apps.core.crypto import EncryptedTextField, decrypt
from apps.core.models import TenantOwnedModel

from .choices import Direction, ImapSecurity, MailboxKind, Outcome, UnknownSenders

R = Role
STAFF_WORKERS = {R.OWNER, R.ADMIN, R.OPERATOR, R.SUPPORT_AGENT}


class Mailbox(TenantOwnedModel):
    """A tenant's support address. Mail arrives by IMAP polling (`kind=imap`, the poller logs in
    with the sealed password) or through the portal's SMTP/LMTP receiver (`kind=smtp`, the MTA
    delivers to `address`). Public replies to its tickets go out from `address`."""

    name = models.CharField(max_length=100)
    address = models.EmailField(unique=True, help_text="The address customers write to; replies are sent from it.")
    kind = models.CharField(max_length=8, choices=MailboxKind.choices, default=MailboxKind.IMAP)
    unknown_senders = models.CharField(
        max_length=12,
        choices=UnknownSenders.choices,
        default=UnknownSenders.REFUSE,
        help_text="Mail from an address that is no customer user of this tenant: refuse it, or open an unverified ticket.",
    )
    is_active = models.BooleanField(default=True)
    imap_host = models.CharField(max_length=255, blank=True, default="")
    imap_port = models.PositiveIntegerField(default=993)
    imap_security = models.CharField(max_length=10, choices=ImapSecurity.choices, default=ImapSecurity.SSL)
    imap_username = models.CharField(max_length=255, blank=True, default="")
    imap_password = EncryptedTextField(blank=True, default="")
    imap_folder = models.CharField(max_length=255, default="INBOX")
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)

    PORTAL_ROLE_ACTIONS = {
        "view": {R.OWNER, R.ADMIN, R.OPERATOR},
        "add": MANAGER_ROLES,
        "change": MANAGER_ROLES,
        "delete": MANAGER_ROLES,
        "poll": {R.OWNER, R.ADMIN, R.OPERATOR},
    }

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    def get_secret(self) -> str:
        """The plaintext IMAP password: the only place it is decrypted."""
        return decrypt(self.imap_password) if self.imap_password else ""

    def clean(self) -> None:
        self.address = (self.address or "").strip().lower()
        if self.kind == MailboxKind.IMAP:
            errors = {}
            if not self.imap_host.strip():
                errors["imap_host"] = "An IMAP mailbox needs the server's host name."
            if not self.imap_username.strip():
                errors["imap_username"] = "An IMAP mailbox needs the user name to log in with."
            if errors:
                raise ValidationError(errors)
        if not 1 <= (self.imap_port or 0) <= 65535:
            raise ValidationError({"imap_port": "A port is 1 to 65535."})


class MailMessage(TenantOwnedModel):
    """One mail in or out of a mailbox and what became of it (opened a ticket, threaded into
    one, ignored as an auto-reply or loop, refused with the reason, sent, failed). Inbound rows
    deduplicate re-delivered mail by Message-ID; every row's Message-ID threads later replies."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_id = models.CharField(max_length=255, blank=True, default="")
    in_reply_to = models.CharField(max_length=255, blank=True, default="")
    sender = models.CharField(max_length=255, blank=True, default="")
    recipients = models.TextField(blank=True, default="")
    subject = models.CharField(max_length=300, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True, default="")
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="mail_messages")
    ticket_message = models.ForeignKey(
        "tickets.TicketMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    PORTAL_ROLE_ACTIONS = {"view": {*STAFF_WORKERS, R.VIEWER}}

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "message_id"], name="tickets_mail_msgid_idx"),
            models.Index(fields=["ticket", "created_at"], name="tickets_mail_ticket_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "direction", "message_id"],
                condition=~Q(message_id="") & ~Q(outcome="duplicate"),
                name="tickets_mail_once",
            ),
            models.UniqueConstraint(
                fields=["ticket_message"], condition=Q(direction="out", outcome="sent"), name="tickets_mail_sent_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.message_id or self.pk}: {self.get_outcome_display()}"
