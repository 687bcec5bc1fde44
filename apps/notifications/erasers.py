"""The notifications app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import ChannelConfig, Delivery, Notification, Preference


@register_eraser("notifications")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """The customer's logins' own notifications, deliveries, preferences and personal channels
    go (nobody reads them any more); notifications to staff about the customer keep their rows
    with the customer's identifiers redacted."""
    mine = {"tenant_id": customer.tenant_id}
    report = {
        "deliveries_deleted": Delivery.objects.filter(**mine, recipient_id__in=personal.user_ids).delete()[0],
        "notifications_deleted": Notification.objects.filter(**mine, recipient_id__in=personal.user_ids).delete()[0],
        "preferences_deleted": Preference.objects.filter(user_id__in=personal.user_ids).delete()[0],
        "channels_deleted": ChannelConfig.objects.filter(user_id__in=personal.user_ids).delete()[0],
    }
    report["redacted"] = scrub_tables(personal, {
        "notifications": (Notification.objects.filter(**mine), ["title", "message", "action_url", "action_label", "metadata"]),
        "deliveries": (Delivery.objects.filter(**mine), ["last_error"]),
    })
    return report
