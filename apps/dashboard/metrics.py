"""Set-based reads of other apps' tables that feed the summary, the KPI checkpoint and account
health. Every function takes a tenant id (or customer organization ids) and issues a fixed number
of aggregate queries over indexed columns, whatever the number of rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.alerts.choices import AlertStatus, Severity
from apps.alerts.models import Alert
from apps.monitoring.choices import ResultStatus
from apps.monitoring.models import CheckResult, Endpoint
from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Delivery
from apps.targets.choices import RunStatus
from apps.targets.models import JobRun
from apps.tickets.choices import OPEN_STATUSES, TicketPriority
from apps.tickets.models import Ticket

FAILED_RUNS = (RunStatus.FAILED, RunStatus.TIMED_OUT)
JUDGED_RUNS = (RunStatus.SUCCEEDED, *FAILED_RUNS)  # cancelled runs say nothing about success
JOB_TREND_DAYS = 14


def _seconds(delta) -> float:
    return delta.total_seconds() if delta is not None else 0.0


# -- tickets --------------------------------------------------------------------------------
def open_tickets(tenant_id: int) -> dict:
    rows = (
        Ticket.objects.filter(tenant_id=tenant_id, status__in=OPEN_STATUSES)
        .values_list("status", "priority")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status: dict[str, int] = {}
    by_priority: dict[str, int] = {}
    for status, priority, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_priority[priority] = by_priority.get(priority, 0) + n
    return {"status": by_status, "priority": by_priority, "total": sum(by_status.values())}


def sla_counts(tenant_id: int, start: datetime, end: datetime) -> tuple[int, int]:
    """(tickets with an SLA created in [start, end), of which breached)."""
    agg = Ticket.objects.filter(
        tenant_id=tenant_id, created_at__gte=start, created_at__lt=end, resolution_due_at__isnull=False
    ).aggregate(total=Count("id"), breached=Count("id", filter=Q(first_response_breached=True) | Q(resolution_breached=True)))
    return agg["total"], agg["breached"]


# -- alerts ---------------------------------------------------------------------------------
def alert_figures(tenant_id: int, since: datetime) -> dict:
    firing = dict(
        Alert.objects.filter(tenant_id=tenant_id, status=AlertStatus.FIRING, silenced=False)
        .values_list("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
        .order_by()
    )
    acked = Alert.objects.filter(tenant_id=tenant_id, acknowledged_at__gte=since).aggregate(
        n=Count("id"), s=Sum(F("acknowledged_at") - F("first_seen"))
    )
    resolved = Alert.objects.filter(tenant_id=tenant_id, resolved_at__gte=since, status=AlertStatus.RESOLVED).aggregate(
        n=Count("id"), s=Sum(F("resolved_at") - F("first_seen"))
    )
    return {
        "firing": {s: firing.get(s, 0) for s in Severity.values},
        "ack_count": acked["n"],
        "ack_seconds": _seconds(acked["s"]),
        "resolve_count": resolved["n"],
        "resolve_seconds": _seconds(resolved["s"]),
    }


# -- job runs ---------------------------------------------------------------------------------
def job_counts(tenant_id: int, start: datetime, end: datetime) -> tuple[int, int]:
    """(judged runs created in [start, end), of which succeeded)."""
    agg = JobRun.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end, status__in=JUDGED_RUNS).aggregate(
        total=Count("id"), ok=Count("id", filter=Q(status=RunStatus.SUCCEEDED))
    )
    return agg["total"], agg["ok"]


def job_trend(tenant_id: int, now: datetime) -> dict:
    """Per day of the last JOB_TREND_DAYS: judged runs, successes, summed and counted durations."""
    since = now - timedelta(days=JOB_TREND_DAYS)
    rows = (
        JobRun.objects.filter(tenant_id=tenant_id, created_at__gte=since, status__in=JUDGED_RUNS)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            runs=Count("id"),
            ok=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            dur=Sum(F("finished_at") - F("started_at"), filter=Q(started_at__isnull=False, finished_at__isnull=False)),
            timed=Count("id", filter=Q(started_at__isnull=False, finished_at__isnull=False)),
        )
        .order_by("day")
    )
    days = {
        r["day"].isoformat(): {
            "runs": r["runs"],
            "succeeded": r["ok"],
            "duration_seconds": _seconds(r["dur"]),
            "timed": r["timed"],
        }
        for r in rows
    }
    return {"days": days, "runs": sum(d["runs"] for d in days.values()), "succeeded": sum(d["succeeded"] for d in days.values())}


# -- endpoints --------------------------------------------------------------------------------
def check_counts(tenant_id: int, start: datetime, end: datetime) -> tuple[int, int]:
    """(judged checks in [start, end) outside maintenance, of which down)."""
    agg = (
        CheckResult.objects.filter(endpoint__tenant_id=tenant_id, checked_at__gte=start, checked_at__lt=end, in_maintenance=False)
        .exclude(status=ResultStatus.STARTED)
        .aggregate(total=Count("id"), down=Count("id", filter=Q(status=ResultStatus.DOWN)))
    )
    return agg["total"], agg["down"]


def endpoint_status(tenant_id: int) -> dict:
    return dict(
        Endpoint.objects.filter(tenant_id=tenant_id, enabled=True)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
        .order_by()
    )


# -- notifications ----------------------------------------------------------------------------
def delivery_failures(tenant_id: int, since: datetime) -> dict:
    rows = dict(
        Delivery.objects.filter(tenant_id=tenant_id, status=DeliveryStatus.FAILED, created_at__gte=since)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
        .order_by()
    )
    return {"by_kind": rows, "failed": sum(rows.values())}


# -- deployments (built in parallel: read by app label, work without it) ------------------------
def deployment_figures(tenant_id: int, now: datetime) -> dict:
    try:
        Operation = apps.get_model("deployments", "Operation")
    except LookupError:
        return {"available": False, "running": 0, "scheduled": 0, "next_at": None}
    qs = Operation.objects.filter(tenant_id=tenant_id)
    running = qs.filter(status="running").count()
    scheduled = qs.filter(status="scheduled")
    next_at = None
    for name in ("scheduled_for", "scheduled_at", "run_at", "not_before"):
        try:
            Operation._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        next_at = scheduled.filter(**{f"{name}__gte": now}).aggregate(m=Min(name))["m"]
        break
    return {
        "available": True,
        "running": running,
        "scheduled": scheduled.count(),
        "next_at": next_at.isoformat() if next_at else None,
    }


# -- the per-tenant summary -------------------------------------------------------------------
def tenant_summary_data(tenant_id: int, *, now: datetime | None = None) -> dict:
    """Every figure of the dashboard for one tenant, additive across tenants."""
    now = now or timezone.now()
    d7, d30 = now - timedelta(days=7), now - timedelta(days=30)
    sla7, sla30 = sla_counts(tenant_id, d7, now), sla_counts(tenant_id, d30, now)
    checks7, checks30 = check_counts(tenant_id, d7, now), check_counts(tenant_id, d30, now)
    return {
        "tickets_open": open_tickets(tenant_id),
        "sla": {"7d": {"total": sla7[0], "breached": sla7[1]}, "30d": {"total": sla30[0], "breached": sla30[1]}},
        "alerts": alert_figures(tenant_id, d30),
        "jobs": job_trend(tenant_id, now),
        "endpoints": {
            "status": endpoint_status(tenant_id),
            "7d": {"checks": checks7[0], "down": checks7[1]},
            "30d": {"checks": checks30[0], "down": checks30[1]},
        },
        "notifications": delivery_failures(tenant_id, d7),
        "deployments": deployment_figures(tenant_id, now),
    }


def merge(a, b):
    """Sum two summaries: numbers add, dicts merge key by key, `next_at` takes the earliest,
    booleans or-ed."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            if key == "next_at":
                out[key] = min(v for v in (a.get(key), value) if v) if (a.get(key) or value) else None
            else:
                out[key] = merge(a[key], value) if key in a else value
        return out
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) or bool(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    return b if a is None else a


# -- account health inputs ----------------------------------------------------------------------
CRITICAL = TicketPriority.CRITICAL


def tenant_health_metrics(tenant_id: int, *, now: datetime) -> dict:
    since = now - timedelta(days=30)
    tickets = Ticket.objects.filter(tenant_id=tenant_id).aggregate(
        open_critical=Count("id", filter=Q(status__in=OPEN_STATUSES, priority=CRITICAL)),
    )
    breaches = Ticket.objects.filter(tenant_id=tenant_id, sla_breached_at__gte=since).count()
    firing = dict(
        Alert.objects.filter(tenant_id=tenant_id, status=AlertStatus.FIRING, silenced=False)
        .values_list("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
        .order_by()
    )
    failed_runs = JobRun.objects.filter(tenant_id=tenant_id, created_at__gte=since, status__in=FAILED_RUNS).count()
    checks, down = check_counts(tenant_id, since, now)
    return {
        "open_critical_tickets": tickets["open_critical"],
        "sla_breaches": breaches,
        "firing_alerts": {s: firing.get(s, 0) for s in Severity.values},
        "failed_job_runs": failed_runs,
        "availability_percent": round(100.0 * (checks - down) / checks, 3) if checks else None,
        "checks": checks,
    }


def customer_health_metrics(tenant_id: int, *, now: datetime) -> dict[int, dict]:
    """Per customer (Customer pk) of the tenant, from three grouped queries."""
    from apps.tenants.customers.choices import ServiceStatus
    from apps.tenants.customers.models import Customer, CustomerService

    since = now - timedelta(days=30)
    customers = dict(Customer.objects.filter(tenant_id=tenant_id, erased_at__isnull=True).values_list("organization_id", "pk"))
    org_ids = [o for o in customers if o is not None]
    per_org = {
        r["customer_id"]: r
        for r in Ticket.objects.filter(tenant_id=tenant_id, customer_id__in=org_ids)
        .values("customer_id")
        .annotate(
            open_critical=Count("id", filter=Q(status__in=OPEN_STATUSES, priority=CRITICAL)),
            breaches=Count("id", filter=Q(sla_breached_at__gte=since)),
        )
        .order_by()
    }
    failed_services = dict(
        CustomerService.objects.filter(tenant_id=tenant_id, status=ServiceStatus.FAILED)
        .values_list("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
        .order_by()
    )
    out = {}
    for org_id, customer_id in customers.items():
        row = per_org.get(org_id, {})
        out[customer_id] = {
            "open_critical_tickets": row.get("open_critical", 0),
            "sla_breaches": row.get("breaches", 0),
            "failed_services": failed_services.get(customer_id, 0),
        }
    return out
