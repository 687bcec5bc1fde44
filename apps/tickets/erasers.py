"""The tickets app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from django.db.models import Q

from apps.tenants.customers.erasure import REDACTED, PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .choices import TimelineKind
from .models import MailMessage, Ticket, TicketAttachment, TicketEvent, TicketMessage


@register_eraser("tickets")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """The customer's own tickets keep their rows (SLA, counts, numbers) but lose their subject,
    metadata and every message body (written by or about the customer); their attachments go,
    files included. Elsewhere in the tenant the customer's identifiers are redacted."""
    tenant = {"tenant_id": customer.tenant_id}
    own = Ticket.objects.filter(**tenant, customer_id=customer.organization_id) if customer.organization_id else Ticket.objects.none()
    own_or_by_them = Q(ticket__in=own.values("pk")) | Q(uploaded_by_id__in=personal.user_ids)
    files = 0
    for att in TicketAttachment.objects.filter(own_or_by_them, ticket__tenant_id=customer.tenant_id):
        if att.file:
            att.file.delete(save=False)  # not transactional: a failed run still leaves the file gone
            files += 1
    report = {
        "attachment_files_deleted": files,
        "attachments_deleted": TicketAttachment.objects.filter(own_or_by_them, ticket__tenant_id=customer.tenant_id).delete()[0],
        "tickets_erased": own.exclude(subject=REDACTED).update(subject=REDACTED, metadata={}),
        "messages_erased": TicketMessage.objects.filter(
            Q(ticket__in=own.values("pk")) | Q(author_id__in=personal.user_ids), ticket__tenant_id=customer.tenant_id
        ).exclude(body=REDACTED).update(body=REDACTED),
        "attachment_entries_erased": TicketEvent.objects.filter(ticket__in=own.values("pk"), kind=TimelineKind.ATTACHMENT)
        .exclude(text=REDACTED).update(text=REDACTED),
    }
    # the mail log of their tickets (apps/tickets/mail): who wrote, to whom, about what
    report["mail_erased"] = (MailMessage.objects.filter(**tenant, ticket__in=own.values("pk")).exclude(sender=REDACTED)
                             .update(sender=REDACTED, subject=REDACTED, recipients="", reason=""))
    in_tenant = {"ticket__tenant_id": customer.tenant_id}
    report["redacted"] = scrub_tables(personal, {
        "tickets": (Ticket.objects.filter(**tenant), ["subject", "tags", "metadata"]),
        "messages": (TicketMessage.objects.filter(**in_tenant), ["body"]),
        "attachments": (TicketAttachment.objects.filter(**in_tenant), ["filename"]),
        "timeline": (TicketEvent.objects.filter(**in_tenant), ["text", "data"]),
        "mail": (MailMessage.objects.filter(**tenant), ["sender", "recipients", "subject", "reason"]),
    })
    return report
