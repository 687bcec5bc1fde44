"""The notifications app's sections of a data export: notifications and their deliveries."""

from __future__ import annotations

from apps.tenants.customers.registry import ExportScope, register_exporter
from apps.tenants.customers.registry import iso as _iso

from .models import Delivery, Notification


def _notifications(scope: ExportScope):
    """The tenant's notifications, or those sent to the customer's own logins."""
    qs = Notification.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(recipient_id__in=scope.personal().user_ids)
    return qs


@register_exporter("notifications", label="Notifications")
def export_notifications(scope: ExportScope):
    for n in scope.in_range(_notifications(scope)).select_related("recipient").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": n.pk, "recipient": n.recipient.get_username(), "type": n.notification_type, "title": n.title, "message": n.message,
            "priority": n.priority, "action_url": n.action_url, "metadata": n.metadata, "created_at": _iso(n.created_at),
            "read_at": _iso(n.read_at), "archived_at": _iso(n.archived_at),
        }


@register_exporter("notification_deliveries", label="Notification deliveries")
def export_deliveries(scope: ExportScope):
    qs = Delivery.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(recipient_id__in=scope.personal().user_ids)
    for d in scope.in_range(qs).order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": d.pk, "notification": d.notification_id, "kind": d.kind, "status": d.status, "attempts": d.attempts,
            "sent_at": _iso(d.sent_at), "created_at": _iso(d.created_at),
        }
