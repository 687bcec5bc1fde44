"""`{% portal_dashboard %}`: the staff dashboard on the admin index (templates/admin/index.html)."""

from __future__ import annotations

from django import template

from apps.alerts.choices import Severity
from apps.tickets.choices import TicketPriority, TicketStatus

from .. import charts
from ..selectors import dashboard_for

register = template.Library()

PRIORITY_CSS = {"critical": "crit", "urgent": "crit", "high": "warn", "normal": "ok", "low": "muted"}
SEVERITY_CSS = {"critical": "crit", "warning": "warn", "info": "muted"}


def _short(iso: str | None) -> str:
    """'2026-11-23T17:24:05+00:00' → '2026-11-23 17:24' (UTC)."""
    return iso[:16].replace("T", " ") if iso else ""


@register.inclusion_tag("dashboard/partner_panel.html", takes_context=True)
def partner_dashboard(context):
    """The partner's home (apps/dashboard/partner.py); nothing for anyone else."""
    from ..partner import partner_board

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"board": None}
    return {"board": partner_board(user)}


@register.inclusion_tag("dashboard/panel.html", takes_context=True)
def portal_dashboard(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    from ..views import timeline_url_for

    board = dashboard_for(user)
    s = board["summary"]
    trend = s["jobs"]["trend"]
    return {
        "timeline_url": timeline_url_for(user),
        "show": bool(s["tenants"] or board["health"] or board["checkpoints"]),
        "s": s,
        "as_of": _short(s["computed_at"]),
        "next_deployment": _short(s["deployments"].get("next_at")),
        "health": board["health"],
        "checkpoints": board["checkpoints"],
        "priority_chart": charts.hbars(
            [(TicketPriority(p).label, n, PRIORITY_CSS[p]) for p, n in reversed(list(s["tickets_open"]["by_priority"].items()))],
            title="Open tickets by priority",
        ),
        "status_chart": charts.hbars(
            [(TicketStatus(st).label.replace(" on customer", ""), n, "ok") for st, n in s["tickets_open"]["by_status"].items()],
            title="Open tickets by status",
        ),
        "severity_chart": charts.hbars(
            [(Severity(sv).label, n, SEVERITY_CSS[sv]) for sv, n in reversed(list(s["alerts"]["firing_by_severity"].items()))],
            title="Firing alerts by severity",
        ),
        "job_success_chart": charts.columns(
            [(d["day"], d["success_percent"]) for d in trend], top=100, title="Job run success % per day", css="ok"
        ),
        "job_duration_chart": charts.columns(
            [(d["day"], d["mean_duration_seconds"]) for d in trend], title="Mean job run duration (s) per day", css="muted"
        ),
    }
