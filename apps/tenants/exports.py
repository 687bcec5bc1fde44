"""The tenants app's contribution to customer data exports (registry: apps/tenants/customers/registry.py)."""

from .customers.registry import ExportScope, register_exporter
from .models import Invitation
from .selectors import customer_invitations


@register_exporter("invitations", label="Invitations")
def export_invitations(scope: ExportScope):
    qs = customer_invitations(scope.customer) if scope.customer is not None else Invitation.objects.filter(tenant_id=scope.tenant_id)
    for inv in scope.in_range(qs).select_related("organization").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": inv.pk, "organization": inv.organization.slug, "email": inv.email, "role": inv.role, "status": inv.current_status,
            "created_at": inv.created_at.isoformat(), "expires_at": inv.expires_at.isoformat(),
            "accepted_at": inv.accepted_at.isoformat() if inv.accepted_at else None,
        }
