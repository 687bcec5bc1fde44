"""The deployments app's section of a data export: the provisioning runs of customer services."""

from __future__ import annotations

from apps.tenants.customers.registry import ExportScope, register_exporter
from apps.tenants.customers.registry import iso as _iso

from .models import ProvisioningRun


@register_exporter("provisioning_runs", label="Provisioning runs")
def export_provisioning_runs(scope: ExportScope):
    qs = ProvisioningRun.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(service_id__in=scope.customer.services.values("pk"))
    for p in scope.in_range(qs).order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": p.pk, "service": p.service_id, "job_run": p.job_run_id, "status": p.status, "error": p.error,
            "created_at": _iso(p.created_at), "finished_at": _iso(p.finished_at),
        }
