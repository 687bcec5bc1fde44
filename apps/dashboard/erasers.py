"""The dashboard app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import AccountHealth, TenantSummary


@register_eraser("dashboard")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Health scores and summaries keep their figures; reasons and data lose the customer's
    identifiers."""
    return scrub_tables(personal, {
        "account_health": (AccountHealth.objects.filter(tenant_id=customer.tenant_id), ["reasons", "metrics"]),
        "summaries": (TenantSummary.objects.filter(tenant_id=customer.tenant_id), ["data"]),
    })
