"""The customer summary's "open_tickets" key (docs/customers.md, summary contributors).

It lives in tickets, not in the dashboard: the tickets app owns ticket reads and their
visibility rules (a customer's own tickets, a partner's escalated ones), and any deployment that
has tickets gets the key, whether or not the dashboard app is installed."""

from __future__ import annotations

from apps.tenants.customers.registry import register_summary_contributor

from .choices import OPEN_STATUSES
from .models import Ticket

LIMIT = 20


@register_summary_contributor("open_tickets")
def open_tickets(customer, *, user):
    """Open tickets of the customer's organization that the user may see, newest first."""
    if not customer.organization_id:
        return {"count": 0, "tickets": []}
    qs = Ticket.objects.visible_to(user).filter(
        tenant_id=customer.tenant_id, customer_id=customer.organization_id, status__in=OPEN_STATUSES
    )
    rows = list(qs.order_by("-created_at", "-id").values("id", "number", "subject", "status", "priority", "created_at")[: LIMIT + 1])
    count = len(rows) if len(rows) <= LIMIT else qs.count()
    return {
        "count": count,
        "tickets": [{**r, "created_at": r["created_at"].isoformat()} for r in rows[:LIMIT]],
    }
