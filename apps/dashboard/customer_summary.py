"""The customer summary's "health" key: the customer's account health score and reasons."""

from __future__ import annotations

from apps.tenants.customers.registry import register_summary_contributor

from .models import AccountHealth


@register_summary_contributor("health")
def health(customer, *, user):
    row = AccountHealth.objects.visible_to(user).filter(customer_id=customer.pk).first()
    if row is None:
        return None
    return {"score": row.score, "grade": row.grade, "reasons": row.reasons, "computed_at": row.computed_at.isoformat()}
