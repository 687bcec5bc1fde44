"""The per-tenant timeline: one stream, newest first, of what happened to a tenant — alerts,
tickets, job runs, runbooks, maintenance windows, health changes (endpoint up/down/degraded and
trend breaches/recoveries), deployment operations and audited configuration changes — read
from the core events outbox (every app already publishes there in the same transaction as its
change), not from a UNION over every table at read time.

One service, `timeline_page`, serves the API (`GET /api/v1/tenants/{slug}/timeline`) and the
admin page (apps/dashboard, `/admin/timeline/<slug>/`).

Fast with millions of events: each kind is a set of event topics (the name's first part,
`core_event.topic`), and a page is, on PostgreSQL, one statement whose branches each read one
`(tenant_id, topic, created_at DESC, id DESC)` index range from the cursor on, at most
`limit + 1` rows each, merged newest first — the cost is a page, not the tenant's history.

Scoping: platform staff see any tenant; tenant staff their own tenant; non-admin staff see no
events of alerts assigned to someone else (as in the alert list). Customers and partners get
404. Events are kept for MAINTENANCE_EVENT_RETENTION_DAYS (apps.maintenance `purge_events`).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, OrgKind
from apps.core.models import Event
from apps.core.tenancy import acting

# kind → event topics (the part of the event name before the first dot)
KINDS = {
    "alert": ("alert",),
    "ticket": ("ticket",),
    "job_run": ("job_run", "job_schedule"),
    "runbook": ("runbook",),
    "maintenance": ("maintenance_window",),
    "endpoint": ("endpoint",),
    "operation": ("deployment",),
    "config": ("config",),
}
ALIASES = {"health": "endpoint", "deployment": "operation"}
KIND_LABELS = {
    "alert": "Alerts", "ticket": "Tickets", "job_run": "Job runs", "runbook": "Runbooks", "maintenance": "Maintenance windows",
    "endpoint": "Health", "operation": "Deployments", "config": "Configuration",
}
TOPIC_KIND = {topic: kind for kind, topics in KINDS.items() for topic in topics}
HIDDEN = ("alert.daily_summary",)
MAX_LIMIT = 200
FIELDS = ("id", "name", "topic", "created_at", "payload", "actor_id")


def _encode(at: datetime, pk) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        at, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        parsed = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "Invalid cursor; use next_cursor from the previous page."}) from exc
    return parsed, pk


def tenant_for(user, slug: str):
    """The tenant whose timeline `user` may read, and the acting context; PermissionDenied otherwise."""
    from apps.tenants.models import Organization

    tenant = Organization.objects.visible_to(user).filter(kind=OrgKind.TENANT, slug=slug).first()
    ctx = acting(user)
    if tenant is None or not (ctx.is_platform or (ctx.kind == OrgKind.TENANT and ctx.tenant_id == tenant.pk and ctx.role in STAFF_ROLES)):
        raise PermissionDenied("No such tenant.")
    return tenant, ctx


def _time(value: str, field: str):
    """An ISO 8601 time, or a date (its start, UTC)."""
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None and (day := parse_date(value)) is not None:
        parsed = datetime.combine(day, time.min, tzinfo=UTC)
    if parsed is None:
        raise ValidationError({field: "Give an ISO 8601 time or date, e.g. 2025-01-31T12:00:00Z or 2025-01-31."})
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_kinds(kinds) -> list[str]:
    """The kinds asked for (a comma list or a list; aliases health → endpoint, deployment →
    operation); all when none. Unknown names are a 400."""
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    wanted = [ALIASES.get(k.strip(), k.strip()) for k in kinds or [] if k and k.strip()]
    unknown = sorted(set(wanted) - set(KINDS))
    if unknown:
        names = ", ".join([*KINDS, *ALIASES])
        raise ValidationError({"kind": f"Unknown kind(s) {', '.join(unknown)}; use {names}."})
    return [k for k in KINDS if k in wanted] or list(KINDS)


def timeline_queryset(*, tenant_id: int, topics: list[str], limit: int, ctx=None, user_id=None, cursor=None, before=None, after=None):
    """The rows of one page (at most `limit`), newest first: on PostgreSQL a UNION ALL of one
    index range per topic, each already ordered and cut at `limit`."""
    base = Event.objects.filter(tenant_id=tenant_id)
    if before is not None:
        base = base.filter(created_at__lt=before)
    if after is not None:
        base = base.filter(created_at__gte=after)
    if cursor is not None:
        at, pk = cursor
        # (created_at, id) < (at, pk); the plain bound keeps the index range starting at the cursor
        base = base.filter(Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk)))
    alerts = Q(topic="alert") & Q(name__in=HIDDEN)
    if ctx is not None and not (ctx.is_platform or ctx.role in MANAGER_ROLES):
        alerts |= Q(topic="alert") & Q(payload__assigned_to_id__gt=0) & ~Q(payload__assigned_to_id=user_id)
    order = ("-created_at", "-id")
    if connection.features.supports_slicing_ordering_in_compound and len(topics) > 1:
        parts = [base.filter(topic=t).exclude(alerts if t == "alert" else Q(pk__in=[])).order_by(*order).values_list(*FIELDS)[:limit]
                 for t in topics]
        return parts[0].union(*parts[1:], all=True).order_by(*order)[:limit]
    return base.filter(topic__in=topics).exclude(alerts).order_by(*order).values_list(*FIELDS)[:limit]


def _entry(row, people: dict) -> dict:
    pk, name, topic, at, payload, actor_id = row
    p = payload or {}
    return {
        "id": str(pk), "at": at, "kind": TOPIC_KIND.get(topic, "other"), "event": name,
        "title": str(p.get("title", name)), "object_type": str(p.get("object_type", "")),
        "object_id": str(p.get("id", "")), "url": str(p.get("url", "")),
        "actor_id": actor_id, "actor": people.get(actor_id, "") if actor_id else "",
        "data": {k: v for k, v in p.items() if k not in ("notify", "title", "url", "id", "object_type")},
    }


def timeline_page(*, user, tenant_slug: str, kinds="", cursor: str = "", limit=50, before: str = "", after: str = "") -> dict:
    """One page of the tenant's timeline: `{"tenant": {...}, "kinds": [...], "results": [...],
    "next_cursor": str | None}`. `after` is inclusive, `before` exclusive; a date means its start
    (UTC). PermissionDenied (→ 404) for a tenant the user may not see, ValidationError (→ 400)
    for bad filters."""
    tenant, ctx = tenant_for(user, tenant_slug)
    try:
        limit = max(1, min(int(limit), MAX_LIMIT))
    except (TypeError, ValueError) as exc:
        raise ValidationError({"limit": f"A number from 1 to {MAX_LIMIT}."}) from exc
    wanted = parse_kinds(kinds)
    topics = [t for k in wanted for t in KINDS[k]]
    rows = list(timeline_queryset(
        tenant_id=tenant.pk, topics=topics, limit=limit + 1, ctx=ctx, user_id=ctx.user_id,
        cursor=_decode(cursor) if cursor else None, before=_time(before, "before"), after=_time(after, "after"),
    ))
    more = len(rows) > limit
    rows = rows[:limit]
    actor_ids = {r[5] for r in rows if r[5]}
    people = dict(get_user_model().objects.filter(pk__in=actor_ids).values_list("pk", "username")) if actor_ids else {}
    return {
        "tenant": {"id": tenant.pk, "slug": tenant.slug, "name": tenant.name},
        "kinds": wanted,
        "results": [_entry(r, people) for r in rows],
        "next_cursor": _encode(rows[-1][3], rows[-1][0]) if more and rows else None,
    }
