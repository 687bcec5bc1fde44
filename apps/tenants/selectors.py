"""Reads of organizations that are more than a filter."""

from __future__ import annotations

from apps.core.tenancy import acting

from .models import Organization


def sees_all_served_tenants(user, partner: Organization) -> bool:
    """Platform staff and the partner's own people see every tenant a partner serves; anyone
    else (a served tenant's staff) sees only their own tenant there (issue 17.3)."""
    ctx = acting(user)
    return ctx.is_platform or ctx.organization_id == partner.pk


def served_tenants_in_sight(user, partner: Organization) -> list[Organization]:
    """The tenants `partner` serves that `user` may learn about (uses a prefetched relation)."""
    served = list(partner.served_tenants.all())
    if sees_all_served_tenants(user, partner):
        return served
    own = acting(user).tenant_id
    return [t for t in served if t.pk == own]


def customer_invitations(customer):
    """Invitations that are a customer's personal data: those to its organization and those to
    the addresses of the customer or its members within the tenant (for export and erasure)."""
    from django.db.models import Q

    from .models import Invitation, Membership

    emails = {e.lower() for e in Membership.objects.filter(organization_id=customer.organization_id)
              .values_list("user__email", flat=True) if e}
    if customer.contact_email:
        emails.add(customer.contact_email.lower())
    reach = Q(tenant_id=customer.tenant_id, email__in=emails)
    if customer.organization_id:
        reach |= Q(organization_id=customer.organization_id)
    return Invitation.objects.filter(reach)
