"""Customer-service provisioning (docs/customers.md): run the tenant's
`customer_service.provision` runbook and report the job run's result to the tenants app."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.tenants.customers.choices import ServiceStatus

from ..choices import ProvisioningStatus, RunbookAction
from ..models import ProvisioningRun, Runbook


def provisioning_start(*, event) -> ProvisioningRun | None:
    """Handle one `customer_service.provision_requested` event (idempotent per event)."""
    from django.core.exceptions import ValidationError

    from apps.targets.choices import Trigger as JobTrigger
    from apps.targets.services import job_run_create
    from apps.tenants.customers.models import CustomerService
    from apps.tenants.customers.services import customer_service_set_status

    payload = event.payload or {}
    service = CustomerService.objects.filter(pk=payload.get("id")).first()
    if service is None or ProvisioningRun.objects.filter(request_event_id=event.pk).exists():
        return None
    runbook = Runbook.objects.select_related("job", "job__current_version").filter(
        tenant_id=service.tenant_id, instance__isnull=True, action=RunbookAction.CUSTOMER_SERVICE_PROVISION).first()
    row = ProvisioningRun(tenant_id=service.tenant_id, service_id=service.pk, request_event_id=event.pk, runbook=runbook)
    if runbook is None:
        row.status, row.error, row.finished_at = ProvisioningStatus.FAILED, (
            "No runbook is configured for customer_service.provision in this tenant; add one under "
            "/api/v1/deployments/runbooks/ and reprovision the service."), timezone.now()
        row.save()
        customer_service_set_status(service=service, status=ServiceStatus.FAILED, error=row.error)
        return row
    schema = runbook.job.current_version.parameters_schema if runbook.job.current_version else {}
    declared = set((schema or {}).get("properties", {}))
    values = {**(payload.get("parameters") or service.parameters or {}), "customer_id": service.customer_id,
              "account_number": payload.get("account_number", ""), "plan": service.plan, "service_id": service.pk}
    try:
        with transaction.atomic():
            run = job_run_create(runbook.job, actor=None, params={k: v for k, v in values.items() if k in declared}, trigger=JobTrigger.DEPLOYMENT)
    except ValidationError as exc:
        row.status, row.error, row.finished_at = ProvisioningStatus.FAILED, "The provisioning job could not start: " + "; ".join(exc.messages), timezone.now()
        row.save()
        customer_service_set_status(service=service, status=ServiceStatus.FAILED, error=row.error)
        return row
    row.job_run = run
    row.save()
    customer_service_set_status(service=service, status=ServiceStatus.PROVISIONING, job_run_id=run.pk)
    return row


def provisioning_finish(*, job_run_id: int) -> ProvisioningRun | None:
    """A provisioning job run ended: the service becomes active or failed (idempotent)."""
    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from apps.tenants.customers.models import CustomerService
    from apps.tenants.customers.services import customer_service_set_status

    with transaction.atomic():
        row = ProvisioningRun.objects.select_for_update().filter(job_run_id=job_run_id, status=ProvisioningStatus.RUNNING).first()
        if row is None:
            return None
        run = JobRun.objects.get(pk=job_run_id)
        service = CustomerService.objects.get(pk=row.service_id)
        if run.status == RunStatus.SUCCEEDED:
            row.status = ProvisioningStatus.SUCCEEDED
            customer_service_set_status(service=service, status=ServiceStatus.ACTIVE, job_run_id=run.pk)
        else:
            row.status = ProvisioningStatus.FAILED
            row.error = f"Provisioning job run #{run.pk} {run.status}: {run.error or ''}".strip()[:4000]
            customer_service_set_status(service=service, status=ServiceStatus.FAILED, job_run_id=run.pk, error=row.error)
        row.finished_at = timezone.now()
        row.save()
    return row
