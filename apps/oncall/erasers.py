"""The on-call app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import FeedToken, Layer, Override, Schedule, Shift


@register_eraser("oncall")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Schedules keep their rotations (staff, not customers, are on call); the customer's
    identifiers are redacted from names, descriptions, override reasons and imported UIDs."""
    mine = {"tenant_id": customer.tenant_id}
    return scrub_tables(
        personal,
        {
            "schedules": (Schedule.objects.filter(**mine), ["name", "description"]),
            "layers": (Layer.objects.filter(**mine), ["name"]),
            "overrides": (Override.objects.filter(**mine), ["reason"]),
            "shifts": (Shift.objects.filter(**mine), ["uid"]),
            "feeds": (FeedToken.objects.filter(**mine), ["name"]),
        },
    )
