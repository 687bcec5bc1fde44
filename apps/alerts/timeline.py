"""The per-tenant incident timeline: one stream, newest first, of what happened to a tenant —
alerts, tickets, job runs, runbooks, maintenance windows, endpoint health, deployment
operations — read from the core events outbox (every app already publishes there in the same
transaction as its change), not from a UNION over every table at read time.

Scoping: platform staff see any tenant; tenant staff their own tenant; non-admin staff see no
events of alerts assigned to someone else (as in the alert list). Customers and partners get
404. Events are kept for MAINTENANCE_EVENT_RETENTION_DAYS (apps.maintenance `purge_events`).
"""

from __future__ import annotations

import base64
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, OrgKind
from apps.core.models import Event
from apps.core.tenancy import acting

KINDS = {
    "alert": ("alert.",),
    "ticket": ("ticket.",),
    "job_run": ("job_run.",),
    "runbook": ("runbook.",),
    "maintenance": ("maintenance_window.",),
    "endpoint": ("endpoint.",),
    "operation": ("operation.",),
}
HIDDEN = ("alert.daily_summary",)
MAX_LIMIT = 200


def _kind_of(name: str) -> str:
    for kind, prefixes in KINDS.items():
        if name.startswith(prefixes):
            return kind
    return "other"


def _encode(event: Event) -> str:
    return base64.urlsafe_b64encode(f"{event.created_at.isoformat()}|{event.pk}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        at, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        parsed = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "Invalid cursor; use next_cursor from the previous page."}) from exc
    return parsed, pk


def _tenant_for(user, slug: str):
    from apps.tenants.models import Organization

    tenant = Organization.objects.filter(kind=OrgKind.TENANT, slug=slug).first()
    ctx = acting(user)
    if tenant is None or not (ctx.is_platform or (ctx.kind == OrgKind.TENANT and ctx.tenant_id == tenant.pk and ctx.role in STAFF_ROLES)):
        raise PermissionDenied("No such tenant.")
    return tenant, ctx


def _time(value: str, field: str):
    parsed = parse_datetime(value) if value else None
    if value and parsed is None:
        raise ValidationError({field: "Give an ISO 8601 time, e.g. 2025-01-31T12:00:00Z."})
    return parsed


def timeline_page(*, user, tenant_slug: str, kinds: str = "", cursor: str = "", limit=50, before: str = "", after: str = "") -> dict:
    """One page of the tenant's timeline: `{"results": [...], "next_cursor": str | None}`."""
    tenant, ctx = _tenant_for(user, tenant_slug)
    try:
        limit = max(1, min(int(limit), MAX_LIMIT))
    except (TypeError, ValueError) as exc:
        raise ValidationError({"limit": f"A number from 1 to {MAX_LIMIT}."}) from exc
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] or list(KINDS)
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        raise ValidationError({"kind": f"Unknown kind(s) {', '.join(unknown)}; use {', '.join(KINDS)}."})
    names = Q()
    for kind in wanted:
        for prefix in KINDS[kind]:
            names |= Q(name__startswith=prefix)
    qs = Event.objects.filter(names, tenant_id=tenant.pk).exclude(name__in=HIDDEN)
    if not (ctx.is_platform or ctx.role in MANAGER_ROLES):
        qs = qs.exclude(Q(name__startswith="alert.") & Q(payload__assigned_to_id__gt=0) & ~Q(payload__assigned_to_id=ctx.user_id))
    if before_at := _time(before, "before"):
        qs = qs.filter(created_at__lt=before_at)
    if after_at := _time(after, "after"):
        qs = qs.filter(created_at__gt=after_at)
    if cursor:
        at, pk = _decode(cursor)
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    rows = list(qs.order_by("-created_at", "-pk").only("id", "name", "created_at", "payload")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    results = []
    for ev in rows:
        p = ev.payload or {}
        results.append({
            "id": str(ev.pk), "at": ev.created_at, "kind": _kind_of(ev.name), "event": ev.name,
            "title": str(p.get("title", ev.name)), "object_type": str(p.get("object_type", "")),
            "object_id": str(p.get("id", "")), "url": str(p.get("url", "")),
            "data": {k: v for k, v in p.items() if k not in ("notify", "title", "url", "id", "object_type")},
        })
    return {"results": results, "next_cursor": _encode(rows[-1]) if more and rows else None}
