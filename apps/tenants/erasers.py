"""The tenants app's contribution to customer erasure (registry: apps/tenants/customers/registry.py)."""

from .customers.registry import register_eraser
from .selectors import customer_invitations


@register_eraser("invitations")
def erase_invitations(customer, *, request, personal=None) -> dict:
    """Delete the customer's invitations (they hold e-mail addresses and nothing refers to them).
    Runs before the `tenants` eraser (sorted by name), while the addresses are still known."""
    return {"invitations_deleted": customer_invitations(customer).delete()[0]}
