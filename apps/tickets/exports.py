"""The tickets app's sections of a data export: tickets, their messages and attachments."""

from __future__ import annotations

from apps.tenants.customers.registry import ExportScope, register_exporter
from apps.tenants.customers.registry import iso as _iso

from .models import Ticket, TicketAttachment, TicketMessage


def _tickets(scope: ExportScope):
    """The tenant's tickets, or the customer's own (opened by its organization)."""
    qs = Ticket.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(customer_id=scope.customer.organization_id) if scope.customer.organization_id else qs.none()
    return qs


@register_exporter("tickets", label="Tickets")
def export_tickets(scope: ExportScope):
    for t in scope.in_range(_tickets(scope)).order_by("pk").iterator(chunk_size=2000):
        yield {
            "number": t.number, "subject": t.subject, "status": t.status, "priority": t.priority, "origin_type": t.origin_type,
            "target_type": t.target_type, "tags": t.tags, "metadata": t.metadata, "created_at": _iso(t.created_at),
            "resolved_at": _iso(t.resolved_at), "closed_at": _iso(t.closed_at),
        }


@register_exporter("ticket_messages", label="Ticket messages")
def export_messages(scope: ExportScope):
    """Public replies; a customer's export leaves out staff's internal notes, as the portal does."""
    qs = TicketMessage.objects.filter(ticket__in=_tickets(scope).values("pk"))
    if scope.customer is not None:
        qs = qs.filter(is_internal=False)
    for m in scope.in_range(qs).select_related("ticket", "author").order_by("pk").iterator(chunk_size=2000):
        yield {
            "ticket": m.ticket.number, "author": m.author.get_username() if m.author else "", "author_type": m.author_type,
            "is_internal": m.is_internal, "body": m.body, "created_at": _iso(m.created_at),
        }


@register_exporter("ticket_attachments", label="Ticket attachments")
def export_attachments(scope: ExportScope):
    """The attachments' names, types and sizes (the files are downloaded from the ticket)."""
    qs = TicketAttachment.objects.filter(ticket__in=_tickets(scope).values("pk"))
    if scope.customer is not None:
        qs = qs.exclude(message__is_internal=True)
    for a in scope.in_range(qs).select_related("ticket").order_by("pk").iterator(chunk_size=2000):
        yield {
            "ticket": a.ticket.number, "filename": a.filename, "content_type": a.content_type, "size": a.size,
            "created_at": _iso(a.created_at),
        }
