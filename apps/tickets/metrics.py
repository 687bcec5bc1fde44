"""Open tickets at risk of or past their SLA, by priority, for /metrics."""

from django.db.models import Count, Q

from apps.core.metrics import gauge

from .models import RUNNING, Ticket


@gauge(
    "tickets_sla",
    "Open tickets by SLA state (at_risk: warned, not breached; breached: a target missed) and priority.",
    ["state", "priority"],
)
def tickets_sla():
    breached = Q(first_response_breached=True) | Q(resolution_breached=True)
    rows = (
        Ticket.objects.filter(status__in=RUNNING)
        .filter(breached | Q(sla_at_risk=True))
        .order_by()
        .values_list("priority")
        .annotate(at_risk=Count("id", filter=Q(sla_at_risk=True) & ~breached), breached=Count("id", filter=breached))
    )
    out = {}
    for priority, at_risk, n_breached in rows:
        out[("at_risk", priority)] = at_risk
        out[("breached", priority)] = n_breached
    return out
