"""The dashboard as the acting user may see it: the sum of the tenant summaries that
`TenantSummary.objects.visible_to(user)` returns (platform staff: every tenant; tenant staff:
their own), plus the worst account health rows and the latest KPI checkpoints — three queries,
whatever the number of tickets, runs or checks behind them."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from apps.alerts.choices import Severity
from apps.tickets.choices import TicketPriority, TicketStatus

from .metrics import JOB_TREND_DAYS, merge
from .models import AccountHealth, KpiCheckpoint, TenantSummary


def _pct(good: int, total: int, digits: int = 2) -> float | None:
    return round(100.0 * good / total, digits) if total else None


def _minutes(seconds: float, count: int) -> float | None:
    return round(seconds / count / 60.0, 1) if count else None


def summary_for(user) -> dict:
    """Derived figures (percentages, means, trends) from the visible summaries."""
    rows = list(TenantSummary.objects.visible_to(user).values_list("data", "computed_at"))
    data: dict = {}
    for row_data, _ in rows:
        data = merge(data, row_data) if data else dict(row_data)
    computed = min((c for _, c in rows), default=None)
    tickets = data.get("tickets_open", {})
    sla = data.get("sla", {})
    alerts = data.get("alerts", {})
    jobs = data.get("jobs", {})
    endpoints = data.get("endpoints", {})
    today = timezone.now().date()
    trend = []
    for i in range(JOB_TREND_DAYS - 1, -1, -1):
        day = (today - timedelta(days=i)).isoformat()
        d = jobs.get("days", {}).get(day, {})
        trend.append({
            "day": day,
            "runs": d.get("runs", 0),
            "success_percent": _pct(d.get("succeeded", 0), d.get("runs", 0), 1),
            "mean_duration_seconds": round(d["duration_seconds"] / d["timed"], 1) if d.get("timed") else None,
        })
    return {
        "tenants": len(rows),
        "computed_at": computed.isoformat() if computed else None,
        "tickets_open": {
            "total": tickets.get("total", 0),
            "by_priority": {p: tickets.get("priority", {}).get(p, 0) for p in TicketPriority.values},
            "by_status": {s: tickets.get("status", {}).get(s, 0) for s in TicketStatus.values if s not in ("resolved", "closed")},
        },
        "sla_compliance": {
            w: {"percent": _pct(v["total"] - v["breached"], v["total"]), "tickets": v["total"], "breached": v["breached"]}
            for w, v in ((w, sla.get(w, {"total": 0, "breached": 0})) for w in ("7d", "30d"))
        },
        "alerts": {
            "firing_by_severity": {s: alerts.get("firing", {}).get(s, 0) for s in Severity.values},
            "mtta_minutes": _minutes(alerts.get("ack_seconds", 0), alerts.get("ack_count", 0)),
            "mttr_minutes": _minutes(alerts.get("resolve_seconds", 0), alerts.get("resolve_count", 0)),
            "acknowledged_30d": alerts.get("ack_count", 0),
            "resolved_30d": alerts.get("resolve_count", 0),
        },
        "jobs": {
            "runs_14d": jobs.get("runs", 0),
            "success_percent_14d": _pct(jobs.get("succeeded", 0), jobs.get("runs", 0)),
            "trend": trend,
        },
        "endpoints": {
            "by_status": endpoints.get("status", {}),
            **{
                f"availability_{w}": _pct(v["checks"] - v["down"], v["checks"], 3)
                for w, v in ((w, endpoints.get(w, {"checks": 0, "down": 0})) for w in ("7d", "30d"))
            },
        },
        "notifications": {
            "failed_7d": data.get("notifications", {}).get("failed", 0),
            "by_kind": data.get("notifications", {}).get("by_kind", {}),
        },
        "deployments": data.get("deployments") or {"available": False, "running": 0, "scheduled": 0, "next_at": None},
    }


def worst_health(user, *, limit: int = 8):
    return list(
        AccountHealth.objects.visible_to(user).select_related("tenant", "customer").order_by("score", "tenant_id", "id")[:limit]
    )


def latest_checkpoints(user, *, limit: int = 8):
    return list(KpiCheckpoint.objects.visible_to(user).select_related("tenant").order_by("-period_start", "tenant_id", "kpi")[:limit])


def dashboard_for(user) -> dict:
    return {
        "summary": summary_for(user),
        "health": worst_health(user),
        "checkpoints": latest_checkpoints(user),
        "today": date.today(),
    }
