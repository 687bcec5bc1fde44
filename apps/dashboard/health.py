"""Account health: a score 0–100 from the last 30 days, with the reasons that lowered it.

Deductions (each capped, so one bad factor cannot hide the others):
- open critical tickets: 10 each, at most 30;
- SLA breaches (tickets breached in 30 days): 5 each, at most 25;
- firing alerts: critical 8, warning 3 each, at most 25;
- failed job runs (tenant, 30 days): 2 each, at most 20; failed services (customer): 10 each, at most 20;
- endpoint availability (tenant, 30 days) below 99.9 %: 1 point per 0.1 % short, at most 20.
Grade: ≥ 80 healthy, ≥ 50 at risk, else critical.
"""

from __future__ import annotations

import math

from .choices import HealthGrade

AVAILABILITY_GOAL = 99.9


def _reason(factor: str, count, points: int, text: str) -> dict:
    return {"factor": factor, "count": count, "points": points, "text": f"{text} (−{points})"}


def score(metrics: dict) -> tuple[int, str, list[dict]]:
    """(score, grade, reasons) for one tenant's or customer's metrics (see metrics.py)."""
    reasons: list[dict] = []
    n = metrics.get("open_critical_tickets", 0)
    if n:
        reasons.append(_reason("open_critical_tickets", n, min(30, 10 * n), f"{n} open critical ticket{'s' if n != 1 else ''}"))
    n = metrics.get("sla_breaches", 0)
    if n:
        reasons.append(_reason("sla_breaches", n, min(25, 5 * n), f"{n} SLA breach{'es' if n != 1 else ''} in 30 days"))
    firing = metrics.get("firing_alerts") or {}
    crit, warn = firing.get("critical", 0), firing.get("warning", 0)
    if crit or warn:
        points = min(25, 8 * crit + 3 * warn)
        if points:
            reasons.append(_reason("firing_alerts", crit + warn, points, f"{crit} critical and {warn} warning alert(s) firing"))
    n = metrics.get("failed_job_runs", 0)
    if n:
        reasons.append(_reason("failed_job_runs", n, min(20, 2 * n), f"{n} failed job run{'s' if n != 1 else ''} in 30 days"))
    n = metrics.get("failed_services", 0)
    if n:
        reasons.append(_reason("failed_services", n, min(20, 10 * n), f"{n} service{'s' if n != 1 else ''} failed to provision"))
    avail = metrics.get("availability_percent")
    if avail is not None and avail < AVAILABILITY_GOAL:
        points = min(20, math.ceil(round((AVAILABILITY_GOAL - avail) * 10, 6)))
        reasons.append(_reason("availability", avail, points, f"endpoint availability {avail:.2f}% < {AVAILABILITY_GOAL}%"))
    value = max(0, 100 - sum(r["points"] for r in reasons))
    grade = HealthGrade.HEALTHY if value >= 80 else HealthGrade.AT_RISK if value >= 50 else HealthGrade.CRITICAL
    return value, grade, reasons
