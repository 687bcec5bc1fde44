"""The monitoring app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import CheckResult, Endpoint, TrendRule


@register_eraser("monitoring")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Endpoints (a customer's line, a push URL), their results and trend rules keep their rows
    (availability, latency) with the customer's identifiers redacted from names, labels,
    paths, keywords and errors."""
    mine = {"tenant_id": customer.tenant_id}
    return scrub_tables(personal, {
        "endpoints": (Endpoint.objects.filter(**mine), ["name", "host", "path", "labels", "match_keyword", "status_reason", "last_error"]),
        "results": (CheckResult.objects.filter(endpoint__tenant_id=customer.tenant_id), ["error"]),
        "trend_rules": (TrendRule.objects.filter(**mine), ["name", "labels", "last_reason"]),
    })
