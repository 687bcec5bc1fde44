"""Reads other apps make: is this object (or tenant) under maintenance right now?"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .choices import WindowScope
from .models import MaintenanceWindow


def candidate_windows(*, tenant_ids: Iterable[int], at: datetime | None = None) -> list[MaintenanceWindow]:
    """Enabled windows of these tenants whose bounds include `at` (recurrence not yet applied),
    with their scoped objects prefetched. One query for a whole batch of objects."""
    at = at or timezone.now()
    return list(
        MaintenanceWindow.objects.filter(tenant_id__in=list(tenant_ids), enabled=True, starts_at__lte=at)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .prefetch_related("objects_in_scope")
    )


def active_windows(*, tenant_id: int, obj=None, labels: dict | None = None, at: datetime | None = None,
                   windows: list[MaintenanceWindow] | None = None) -> list[MaintenanceWindow]:
    """Windows active at `at` (default now) for the tenant, or for `obj` within it.

    With `obj` (any model instance) a window counts when it is tenant-wide, names the object,
    or its label matchers match the object's `labels` (or the `labels` given). Pass `windows`
    from `candidate_windows` to evaluate many objects without a query each.
    """
    at = at or timezone.now()
    pool = windows if windows is not None else candidate_windows(tenant_ids=[tenant_id], at=at)
    found = []
    for window in pool:
        if window.tenant_id != tenant_id or not window.is_active(at):
            continue
        if obj is None and labels is None or window.covers(obj, labels):
            found.append(window)
    return found


def in_maintenance(*, tenant_id: int, obj=None, labels: dict | None = None, at: datetime | None = None,
                   windows: list[MaintenanceWindow] | None = None) -> bool:
    """True if a window is active for the object at `at`; without an object, True only for a
    tenant-wide window (a window scoped to one instance does not put the whole tenant under)."""
    found = active_windows(tenant_id=tenant_id, obj=obj, labels=labels, at=at, windows=windows)
    if obj is None and labels is None:
        return any(w.scope == WindowScope.TENANT for w in found)
    return bool(found)
