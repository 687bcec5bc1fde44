"""The maintenance app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import MaintenanceWindow


@register_eraser("maintenance")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Maintenance windows keep their rows (what was in maintenance when) with the customer's
    identifiers redacted from names, descriptions and label matchers."""
    return scrub_tables(personal, {
        "windows": (MaintenanceWindow.objects.filter(tenant_id=customer.tenant_id), ["name", "description", "label_matchers"]),
    })
