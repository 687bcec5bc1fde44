"""The partner's home: the tenants it serves and the tickets escalated or routed to it, with
their SLA state — read through the same gate as everything else (`visible_to`)."""

from __future__ import annotations

from django.apps import apps
from django.db.models import Count, Q

from apps.core.choices import OrgKind
from apps.core.tenancy import acting
from apps.tickets.choices import OPEN_STATUSES
from apps.tickets.models import Ticket

BREACHED = Q(first_response_breached=True) | Q(resolution_breached=True)


def partner_board(user, *, limit: int = 10) -> dict | None:
    """None unless the user acts for a partner; else per served tenant the open tickets of the
    partner (total, at risk, breached) and the `limit` most urgent open ones."""
    ctx = acting(user)
    if ctx.is_platform or ctx.kind != OrgKind.PARTNER:
        return None
    Organization = apps.get_model("tenants", "Organization")
    tenants = list(Organization.objects.filter(pk__in=ctx.served_tenant_ids).order_by("name").values("pk", "name"))
    open_tickets = Ticket.objects.visible_to(user).filter(status__in=list(OPEN_STATUSES))
    counts = {
        row["tenant_id"]: row
        for row in open_tickets.order_by()
        .values("tenant_id")
        .annotate(
            total=Count("pk"), at_risk=Count("pk", filter=Q(sla_at_risk=True) & ~BREACHED), breached=Count("pk", filter=BREACHED)
        )
    }
    rows = [
        {"name": t["name"], **{k: counts.get(t["pk"], {}).get(k, 0) for k in ("total", "at_risk", "breached")}} for t in tenants
    ]
    urgent = list(
        open_tickets.select_related("tenant").order_by(
            "-first_response_breached", "-resolution_breached", "-sla_at_risk", "-priority_rank", "resolution_due_at", "id"
        )[:limit]
    )
    return {"tenants": rows, "urgent": urgent, "open_total": sum(r["total"] for r in rows)}
