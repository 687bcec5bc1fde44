"""The tenants app's contribution to customer erasure (registry: apps/tenants/customers/registry.py)."""

from .customers.registry import register_eraser
from .selectors import customer_invitations


@register_eraser("invitations")
def erase_invitations(customer, *, request, personal=None) -> dict:
    """Delete the customer's invitations (they hold e-mail addresses and nothing refers to them).
    Runs before the `tenants` eraser (sorted by name), while the addresses are still known."""
    return {"invitations_deleted": customer_invitations(customer).delete()[0]}


@register_eraser("api_access")
def erase_api_access(customer, *, request, personal=None) -> dict:
    """Delete the API tokens of the customer's organization and of its own logins (names, last-used
    addresses), and the SSO identities linking those logins to a provider's subject; service accounts
    of the organization are deactivated and their names and descriptions scrubbed."""
    from django.db.models import Q

    from .models import ApiToken, ServiceAccount, SsoIdentity

    user_ids = personal.user_ids if personal else ()
    reach = Q(user_id__in=user_ids)
    if customer.organization_id:
        reach |= Q(organization_id=customer.organization_id)
    tokens = ApiToken.objects.filter(reach).delete()[0]
    identities = SsoIdentity.objects.filter(user_id__in=user_ids).delete()[0]
    accounts = ServiceAccount.objects.filter(organization_id=customer.organization_id) if customer.organization_id else ServiceAccount.objects.none()
    accounts.update(is_active=False)
    scrubbed = personal.scrub(accounts, ["name", "description"]) if personal else 0
    return {"api_tokens_deleted": tokens, "sso_identities_deleted": identities, "service_accounts_scrubbed": scrubbed}
