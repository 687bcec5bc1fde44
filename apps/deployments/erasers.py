"""The deployments app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from django_celery_beat.models import PeriodicTask

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import DeploymentSchedule, Instance, Operation, OperationBatch, ProvisioningRun, Runbook


@register_eraser("deployments")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Instances, operations (parameters, log, errors), schedules, runbooks and provisioning runs
    keep their rows with the customer's identifiers redacted."""
    mine = {"tenant_id": customer.tenant_id}
    return scrub_tables(personal, {
        "instances": (Instance.objects.filter(**mine), ["name", "config"]),
        "operations": (Operation.objects.filter(**mine), ["parameters", "log", "error"]),
        "batches": (OperationBatch.objects.filter(operation__tenant_id=customer.tenant_id), ["target_names", "gate_detail"]),
        "schedules": (DeploymentSchedule.objects.filter(**mine), ["parameters", "metadata", "last_error"]),
        "runbooks": (Runbook.objects.filter(**mine), ["description"]),
        "provisioning_runs": (ProvisioningRun.objects.filter(**mine), ["error"]),
        "periodic_tasks": (PeriodicTask.objects.filter(deployment_schedule__tenant_id=customer.tenant_id), ["name", "description"]),
    })
