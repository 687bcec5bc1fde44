"""Reads of the tickets app that other apps (alerts) and dashboards call. They take a tenant id
and return rows regardless of the caller: the caller has already decided who may see them."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.core.choices import Role
from apps.tenants.models import Membership, ServiceAccount

from .choices import CLOCK_RUNNING_STATUSES, OPEN_STATUSES, TicketPriority
from .models import Ticket, TicketAgent


def agent_workloads(*, tenant_id: int) -> list[dict]:
    """Open tickets (not resolved/closed) per assignee of a tenant: `[{"user_id", "open_count"}]`,
    busiest first. Active support agents with no open ticket are listed with 0."""
    counts = dict(
        Ticket.objects.filter(tenant_id=tenant_id, status__in=list(OPEN_STATUSES), assignee__isnull=False)
        .values("assignee_id").annotate(n=Count("id")).values_list("assignee_id", "n")
    )
    agents = Membership.objects.filter(organization_id=tenant_id, role=Role.SUPPORT_AGENT, is_active=True).values_list("user_id", flat=True)
    for user_id in agents:
        counts.setdefault(user_id, 0)
    return sorted(({"user_id": u, "open_count": n} for u, n in counts.items()), key=lambda d: (-d["open_count"], d["user_id"]))


def unassigned_critical(*, tenant_id: int, older_than: timedelta) -> QuerySet:
    """Open critical tickets of a tenant with no assignee, created more than `older_than` ago."""
    return Ticket.objects.filter(
        tenant_id=tenant_id, priority=TicketPriority.CRITICAL, assignee__isnull=True,
        status__in=list(OPEN_STATUSES), created_at__lte=timezone.now() - older_than,
    ).order_by("created_at")


HIGH_PRIORITIES = (TicketPriority.HIGH, TicketPriority.URGENT, TicketPriority.CRITICAL)


def high_priority_waiting(*, tenant_id: int) -> int:
    """Open high/urgent/critical tickets of a tenant that no one has taken (the queue)."""
    return Ticket.objects.filter(tenant_id=tenant_id, priority__in=HIGH_PRIORITIES, assignee__isnull=True,
                                 status__in=list(OPEN_STATUSES)).count()


def tickets_at_risk(*, tenant_id: int, include_breached: bool = True) -> QuerySet:
    """Tickets of a tenant whose clock runs and that the sweep flagged at risk (or breached)."""
    flagged = Q(sla_at_risk=True)
    if not include_breached:
        flagged &= Q(first_response_breached=False, resolution_breached=False)
    return Ticket.objects.filter(flagged, tenant_id=tenant_id, status__in=list(CLOCK_RUNNING_STATUSES)).order_by("resolution_due_at")


def assignment_candidates(*, tenant_id: int, with_loads: bool) -> list[tuple]:
    """(user_id, username, is_available, last_assigned_at, open tickets or 0) of the tenant's
    active support agents, for auto-assignment. Raw SQL: it runs while the tenant's assignment
    lock is held, so it is one round trip with no query compilation (agents, their TicketAgent
    profile and their loads at once)."""
    user_table = get_user_model()._meta.db_table
    open_statuses = sorted(s.value for s in OPEN_STATUSES)
    load = (
        f'(SELECT COUNT(*) FROM "{Ticket._meta.db_table}" t WHERE t.tenant_id = %s AND t.assignee_id = m.user_id '
        f"AND t.status IN ({', '.join(['%s'] * len(open_statuses))}))"
        if with_loads else "0"
    )
    sql = (
        f"SELECT m.user_id, u.username, a.is_available, a.last_assigned_at, {load} "
        f'FROM "{Membership._meta.db_table}" m JOIN "{user_table}" u ON u.id = m.user_id '
        f'LEFT JOIN "{TicketAgent._meta.db_table}" a ON a.tenant_id = %s AND a.user_id = m.user_id '
        f"WHERE m.organization_id = %s AND m.role = %s AND m.is_active AND u.is_active "
        # service accounts (issue 19.1) act through API tokens; they are never handed tickets
        f'AND NOT EXISTS (SELECT 1 FROM "{ServiceAccount._meta.db_table}" sa WHERE sa.user_id = m.user_id)'
    )
    params = [*([tenant_id, *open_statuses] if with_loads else []), tenant_id, tenant_id, Role.SUPPORT_AGENT.value]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
