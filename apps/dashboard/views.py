"""Admin pages of the dashboard: the tenant timeline (`/admin/timeline/<slug>/`) and its index.

The page is a thin entry point over `apps.alerts.timeline.timeline_page` — the service the API
(`GET /api/v1/tenants/{slug}/timeline`) calls — so it shows the same rows to the same people:
platform staff any tenant, tenant staff their own (non-admin staff without alerts assigned to
others); anyone else gets a 404.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_date

from apps.alerts.timeline import KIND_LABELS, KINDS, tenant_for, timeline_page
from apps.core.choices import STAFF_ROLES, OrgKind
from apps.core.tenancy import acting

PAGE_SIZE = 50


def timeline_url_for(user) -> str | None:
    """Where "Tenant timeline" leads this user: their tenant's page, the index for platform
    staff, nowhere for others."""
    ctx = acting(user)
    if ctx.is_platform:
        return reverse("admin-timeline")
    if ctx.kind == OrgKind.TENANT and ctx.role in STAFF_ROLES and ctx.organization_slug:
        return reverse("admin-tenant-timeline", args=[ctx.organization_slug])
    return None


def timeline_index(request):
    """Platform staff pick a tenant; tenant staff go straight to their own timeline."""
    from apps.tenants.models import Organization

    ctx = acting(request.user)
    if not ctx.is_platform:
        url = timeline_url_for(request.user)
        if url is None:
            raise PermissionDenied("Only tenant and platform staff have a tenant timeline.")
        return redirect(url)
    q = request.GET.get("q", "").strip()
    tenants = Organization.objects.visible_to(request.user).filter(kind=OrgKind.TENANT).order_by("name")
    if q:
        tenants = tenants.filter(name__icontains=q) | tenants.filter(slug__icontains=q)
    context = {**admin.site.each_context(request), "title": "Tenant timeline", "tenants": tenants[:200], "q": q}
    return render(request, "dashboard/timeline_index.html", context)


def _filters(request) -> tuple[dict, list[str]]:
    """The page's filters from the query string, and messages for the ones that make no sense."""
    errors = []
    kinds = [k for k in request.GET.getlist("kind") if k]
    day_from, day_to = request.GET.get("from", "").strip(), request.GET.get("to", "").strip()
    after = before = ""
    if day_from:
        if parse_date(day_from) is None:
            errors.append("From: give a date as YYYY-MM-DD.")
        else:
            after = day_from
    if day_to:
        parsed = parse_date(day_to)
        if parsed is None:
            errors.append("To: give a date as YYYY-MM-DD.")
        else:
            before = (parsed + timedelta(days=1)).isoformat()  # the "to" day is included
    return {"kinds": kinds, "after": after, "before": before, "from": day_from, "to": day_to,
            "cursor": request.GET.get("cursor", "")}, errors


def tenant_timeline(request, slug: str):
    """One tenant's timeline: kind and date filters, 50 entries a page, an "older" link."""
    try:
        tenant, _ = tenant_for(request.user, slug)
    except PermissionDenied as exc:
        raise Http404("No such tenant.") from exc
    f, errors = _filters(request)
    page = {"results": [], "next_cursor": None, "kinds": list(KINDS)}
    if not errors:
        try:
            page = timeline_page(user=request.user, tenant_slug=slug, kinds=f["kinds"], cursor=f["cursor"], limit=PAGE_SIZE,
                                 before=f["before"], after=f["after"])
        except ValidationError as exc:
            errors = exc.messages
    base = [("kind", k) for k in f["kinds"]] + [(k, f[k]) for k in ("from", "to") if f[k]]
    context = {
        **admin.site.each_context(request),
        "title": f"Timeline of {tenant.name}",
        "tenant": tenant,
        "entries": page["results"],
        "kind_choices": [(k, KIND_LABELS[k], k in f["kinds"]) for k in KINDS],
        "filters": f,
        "errors": errors,
        "newest_url": "?" + urlencode(base) if f["cursor"] else "",
        "older_url": "?" + urlencode([*base, ("cursor", page["next_cursor"])]) if page["next_cursor"] else "",
        "index_url": timeline_url_for(request.user) if acting(request.user).is_platform else "",
    }
    return render(request, "dashboard/timeline.html", context, status=400 if errors else 200)
