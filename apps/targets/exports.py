"""The targets app's section of a data export: job runs (for one customer: those naming them)."""

from __future__ import annotations

from apps.tenants.customers.registry import ExportScope, register_exporter
from apps.tenants.customers.registry import iso as _iso

from .models import JobRun


@register_exporter("job_runs", label="Job runs")
def export_job_runs(scope: ExportScope):
    """Runs carry no customer key: for one customer, the runs whose parameters name them."""
    qs = JobRun.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(scope.personal().mentions("params"))
    for r in scope.in_range(qs).select_related("job").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": r.pk, "job": r.job.name, "params": r.params, "status": r.status, "trigger": r.trigger,
            "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at), "created_at": _iso(r.created_at),
        }
