"""Instances and runbooks: create, update, delete."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.audit import config_change, config_deleted
from apps.core.services import assign_tenant

from ..choices import ACTIVE_OPERATION_STATUSES, InstanceStatus
from ..models import Instance, Runbook
from .common import require

INSTANCE_FIELDS = {"name", "environment", "version", "cpu_cores", "memory_gb", "storage_gb", "config"}
RUNBOOK_FIELDS = {"action", "instance", "job", "strategy", "batch_percent", "health_gate", "description"}


def _same_tenant_targets(instance: Instance, targets) -> None:
    for t in targets or []:
        if t.tenant_id != instance.tenant_id:
            raise ValidationError({"targets": f"Target {t} belongs to another tenant."})


def _fields(data: dict, allowed: set) -> dict:
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError({k: "This field cannot be set here." for k in unknown})
    return data


def instance_create(*, actor, targets=(), tenant=None, tenant_id=None, **fields) -> Instance:
    """Register an instance (status provisioning until a provision operation succeeds)."""
    _fields(fields, INSTANCE_FIELDS)
    instance = Instance(tenant_id=tenant_id or getattr(tenant, "pk", None), **fields)
    assign_tenant(instance, actor=actor)
    from apps.core.policy import policy

    if actor is not None and not policy.allows(actor, "add", Instance):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Your role does not allow adding instances.")
    _same_tenant_targets(instance, targets)
    with transaction.atomic(), config_change(instance, actor=actor):
        instance.full_clean()
        instance.save()
        instance.targets.set(targets)
    return instance


def instance_update(instance: Instance, *, actor, targets=None, **fields) -> Instance:
    require(actor, "change", instance, "Your role does not allow changing this instance.")
    fields.pop("tenant", None)
    fields.pop("tenant_id", None)
    _fields(fields, INSTANCE_FIELDS)
    if instance.status == InstanceStatus.DESTROYED:
        raise ValidationError("The instance is destroyed; it cannot be changed.")
    if instance.operations.filter(status__in=ACTIVE_OPERATION_STATUSES).exists() and ({"version", "cpu_cores", "memory_gb", "storage_gb"} & set(fields) or targets is not None):
        raise ValidationError("An operation is under way on this instance; change it when the operation has ended.")
    for key, value in fields.items():
        setattr(instance, key, value)
    _same_tenant_targets(instance, targets)
    with transaction.atomic(), config_change(instance, actor=actor) as change:
        instance.full_clean()
        instance.save()
        change["fields"] = ["targets"] if targets is not None else []
        if targets is not None:
            instance.targets.set(targets)
    return instance


def instance_delete(instance: Instance, *, actor) -> None:
    """Remove an instance record: only once destroyed (or never provisioned), with its history."""
    require(actor, "delete", instance, "Your role does not allow deleting this instance.")
    if instance.operations.filter(status__in=ACTIVE_OPERATION_STATUSES).exists():
        raise ValidationError("An operation is under way on this instance; cancel it first.")
    if instance.status not in (InstanceStatus.DESTROYED, InstanceStatus.PROVISIONING):
        raise ValidationError(f"Instance {instance.name!r} is {instance.status}; run a destroy operation before deleting its record.")
    with transaction.atomic():
        config_deleted(instance, actor=actor)
        instance.operations.all().delete()
        instance.delete()


def runbook_create(*, actor, tenant=None, tenant_id=None, **fields) -> Runbook:
    _fields(fields, RUNBOOK_FIELDS)
    runbook = Runbook(tenant_id=tenant_id or getattr(tenant, "pk", None), **fields)
    if runbook.tenant_id is None and runbook.instance_id:
        runbook.tenant_id = runbook.instance.tenant_id
    if runbook.tenant_id is None and runbook.job_id and actor is not None and getattr(actor, "is_superuser", False):
        runbook.tenant_id = runbook.job.tenant_id
    assign_tenant(runbook, actor=actor)
    from apps.core.policy import policy

    if actor is not None and not policy.allows(actor, "add", Runbook):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Your role does not allow adding runbooks.")
    with transaction.atomic(), config_change(runbook, actor=actor):
        runbook.full_clean()
        runbook.save()
    return runbook


def runbook_update(runbook: Runbook, *, actor, **fields) -> Runbook:
    require(actor, "change", runbook, "Your role does not allow changing this runbook.")
    fields.pop("tenant", None)
    fields.pop("tenant_id", None)
    _fields(fields, RUNBOOK_FIELDS)
    for key, value in fields.items():
        setattr(runbook, key, value)
    with transaction.atomic(), config_change(runbook, actor=actor):
        runbook.full_clean()
        runbook.save()
    return runbook


def runbook_delete(runbook: Runbook, *, actor) -> None:
    require(actor, "delete", runbook, "Your role does not allow deleting this runbook.")
    with transaction.atomic():
        config_deleted(runbook, actor=actor)
        runbook.delete()
