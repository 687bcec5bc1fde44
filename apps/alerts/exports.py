"""The alerts app's section of a data export: alerts (for one customer: those naming them)."""

from __future__ import annotations

from apps.tenants.customers.registry import ExportScope, register_exporter
from apps.tenants.customers.registry import iso as _iso

from .models import Alert

TEXT = ("title", "message", "labels", "annotations", "metadata")


@register_exporter("alerts", label="Alerts")
def export_alerts(scope: ExportScope):
    """Alerts carry no customer key: for one customer, those whose text, labels, annotations or
    metadata name them (their name, e-mail, phone or a login's e-mail)."""
    qs = Alert.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(scope.personal().mentions(*TEXT))
    for a in scope.in_range(qs).order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": a.pk, "type": a.alert_type, "severity": a.severity, "status": a.status, "title": a.title, "message": a.message,
            "labels": a.labels, "annotations": a.annotations, "metadata": a.metadata, "first_seen": _iso(a.first_seen),
            "last_seen": _iso(a.last_seen), "created_at": _iso(a.created_at),
        }
