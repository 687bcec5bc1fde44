"""Requesting operations: parameters by type, allowed instance states, runbook resolution,
four-eyes approvals (approve/reject/expire) and cancellation."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.events import publish

from ..choices import (
    ACTIVE_OPERATION_STATUSES,
    BatchStatus,
    Environment,
    InstanceStatus,
    OperationKind,
    OperationStatus,
    Strategy,
    Trigger,
)
from ..models import Instance, Operation, Runbook
from .common import operation_payload, require, tenant_policy

K = OperationKind
S = InstanceStatus

# Which instance states each operation may start from.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    K.PROVISION: frozenset({S.PROVISIONING, S.FAILED}),
    K.UPGRADE: frozenset({S.ACTIVE, S.FAILED}),
    K.SCALE: frozenset({S.ACTIVE}),
    K.SUSPEND: frozenset({S.ACTIVE}),
    K.RESUME: frozenset({S.SUSPENDED}),
    K.DESTROY: frozenset({S.PROVISIONING, S.ACTIVE, S.SUSPENDED, S.FAILED}),
}
SIZE_FIELDS = ("cpu_cores", "memory_gb", "storage_gb")


def _positive_int(name: str, value, errors: dict) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors[name] = f"{name} must be a positive whole number; got {value!r}."


def validate_parameters(operation: str, parameters) -> dict:
    """Check the parameters of one operation type (ProvisionRequest, UpgradeRequest{to_version,
    rollback_on_failure}, ScaleRequest{cpu_cores, memory_gb, storage_gb}; none for the others)
    and return them normalised. Unknown keys are refused, so a typo is not silently ignored."""
    if operation not in K.values:
        raise ValidationError({"operation": f"Unknown operation {operation!r}; use one of {', '.join(K.values)}."})
    parameters = dict(parameters or {})
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters are a JSON object."})
    allowed = {
        K.PROVISION: {"version", "cpu_cores", "memory_gb", "storage_gb", "config"},
        K.UPGRADE: {"to_version", "rollback_on_failure"},
        K.SCALE: set(SIZE_FIELDS),
    }.get(operation, {"reason"})
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ValidationError({"parameters": f"{', '.join(unknown)} do(es) not apply to {operation}; "
                                             f"allowed: {', '.join(sorted(allowed)) or 'none'}."})
    errors: dict[str, str] = {}
    if operation == K.UPGRADE:
        version = parameters.get("to_version")
        if not isinstance(version, str) or not version.strip():
            errors["to_version"] = "An upgrade needs to_version (the version to upgrade to)."
        else:
            parameters["to_version"] = version.strip()[:60]
        rb = parameters.get("rollback_on_failure", False)
        if not isinstance(rb, bool):
            errors["rollback_on_failure"] = "rollback_on_failure is true or false."
        parameters["rollback_on_failure"] = bool(rb)
    elif operation == K.SCALE:
        if not any(k in parameters for k in SIZE_FIELDS):
            errors["parameters"] = "A scale needs at least one of cpu_cores, memory_gb, storage_gb."
        for key in SIZE_FIELDS:
            if key in parameters:
                _positive_int(key, parameters[key], errors)
    elif operation == K.PROVISION:
        for key in SIZE_FIELDS:
            if key in parameters:
                _positive_int(key, parameters[key], errors)
        if "version" in parameters and (not isinstance(parameters["version"], str) or not parameters["version"].strip()):
            errors["version"] = "version is a non-empty string."
        if "config" in parameters and not isinstance(parameters["config"], dict):
            errors["config"] = "config is a JSON object."
    elif "reason" in parameters and not isinstance(parameters["reason"], str):
        errors["reason"] = "reason is a string."
    if errors:
        raise ValidationError(errors)
    return parameters


def check_instance_state(instance: Instance, operation: str, parameters: dict) -> None:
    """A clear 400 when the operation does not fit the instance's state."""
    allowed = ALLOWED_FROM[operation]
    if instance.status not in allowed:
        states = ", ".join(sorted(allowed))
        raise ValidationError(f"Cannot {operation} instance {instance.name!r}: it is {instance.status} "
                              f"({operation} is allowed when the instance is {states}).")
    if operation == K.UPGRADE and parameters["to_version"] == instance.version:
        raise ValidationError({"to_version": f"Instance {instance.name!r} already runs version {instance.version}."})
    if operation == K.SCALE and all(parameters.get(k, getattr(instance, k)) == getattr(instance, k) for k in SIZE_FIELDS):
        raise ValidationError({"parameters": "The instance already has these resources; nothing to scale."})
    busy = instance.operations.filter(status__in=ACTIVE_OPERATION_STATUSES).first()
    if busy is not None:
        raise ValidationError(f"Instance {instance.name!r} already has operation #{busy.pk} "
                              f"({busy.operation}, {busy.get_status_display().lower()}); wait for it or cancel it.")


def resolve_runbook(instance: Instance, action: str) -> Runbook:
    action = str(action)
    runbook = (Runbook.objects.select_related("job").filter(instance=instance, action=action).first()
               or Runbook.objects.select_related("job").filter(tenant_id=instance.tenant_id, instance__isnull=True, action=action).first())
    if runbook is None:
        raise ValidationError(f"No runbook maps {action!r} to a job for instance {instance.name!r}; "
                              "add one under /api/v1/deployments/runbooks/ (per tenant or per instance).")
    return runbook


def needs_approval(instance: Instance, operation: str) -> bool:
    conf = tenant_policy(instance.tenant)
    if operation == K.DESTROY:
        return conf["approve_destroy"]
    if operation == K.UPGRADE and instance.environment == Environment.PRODUCTION:
        return conf["approve_production_upgrade"]
    return False


def operation_request(*, actor, instance: Instance, operation: str, parameters: dict | None = None, strategy: str | None = None,
                      batch_percent: int | None = None, require_window: bool = False, trigger: str = Trigger.USER,
                      schedule=None, triggered_by=None) -> Operation:
    """Request an operation on an instance. It starts at once (after commit), or waits for a second
    admin's approval (destroy, production upgrades), or for a maintenance window."""
    operation = str(operation)
    require(actor, "add", instance, "Your role does not allow operations on this instance.")
    from apps.core.policy import policy

    if actor is not None and not policy.allows(actor, "add", Operation):
        raise PermissionDenied("Your role does not allow operations on instances.")
    parameters = validate_parameters(operation, parameters)
    if strategy is not None and strategy not in Strategy.values:
        raise ValidationError({"strategy": f"Unknown strategy {strategy!r}; use {' or '.join(Strategy.values)}."})
    if batch_percent is not None and not 1 <= int(batch_percent) <= 100:
        raise ValidationError({"batch_percent": "The batch size is a percentage between 1 and 100."})
    user = triggered_by if triggered_by is not None else (actor if getattr(actor, "pk", None) else None)
    with transaction.atomic():
        instance = Instance.objects.select_for_update().select_related("tenant").get(pk=instance.pk)
        check_instance_state(instance, operation, parameters)
        runbook = resolve_runbook(instance, operation)
        if not instance.targets.filter(enabled=True).exists():
            raise ValidationError(f"Instance {instance.name!r} has no enabled target to run the {operation} runbook on.")
        op = Operation(
            tenant_id=instance.tenant_id, instance=instance, operation=operation, parameters=parameters,
            strategy=strategy or runbook.strategy,
            batch_percent=batch_percent or (runbook.batch_percent if (strategy or runbook.strategy) == Strategy.ROLLING else 100),
            health_gate=runbook.health_gate, rollback_on_failure=bool(parameters.get("rollback_on_failure")),
            require_window=require_window, runbook=runbook, job=runbook.job, trigger=trigger, triggered_by=user, schedule=schedule,
        )
        if needs_approval(instance, operation):
            op.status = OperationStatus.PENDING_APPROVAL
            op.approval_expires_at = timezone.now() + timedelta(hours=tenant_policy(instance.tenant)["approval_ttl_hours"])
            op.add_log(f"Requested by {user or 'the system'}; needs approval by a second admin until {op.approval_expires_at:%Y-%m-%d %H:%M} UTC.")
        else:
            op.status = OperationStatus.SCHEDULED
            op.add_log(f"Requested by {user or 'the system'}.")
        op.full_clean()
        op.save()
        if op.status == OperationStatus.PENDING_APPROVAL:
            publish("deployment.approval_requested", tenant=op.tenant_id, actor=user, payload=operation_payload(
                op, expires_at=op.approval_expires_at.isoformat(), notify={
                    "type": "deployment_approval_requested", "priority": "high",
                    "title": f"Approve {op.operation} of {instance.name} ({instance.environment})",
                    "message": f"{user or 'A schedule'} requested {op.operation} {parameters or ''}; a second admin must approve it.",
                    "roles": ["owner", "admin"], "action_url": f"/admin/deployments/operation/{op.pk}/change/",
                    "action_label": "Review operation",
                }))
        else:
            _enqueue_start(op.pk)
    return op


def _enqueue_start(operation_id: int) -> None:
    from ..tasks import start_operation_task

    transaction.on_commit(lambda: _safe_delay(start_operation_task, operation_id))


def _safe_delay(task, *args) -> None:
    import logging

    try:
        task.delay(*args)
    except Exception as exc:  # broker down: the sweeper starts/advances it from the rows
        logging.getLogger(__name__).warning("%s(%s) not enqueued (%s); the sweeper will pick it up", task.name, args, exc)


def operation_approve(op: Operation, *, actor) -> Operation:
    """Four eyes: an owner/admin of the tenant other than the requester approves; the operation
    then starts (or waits for its window)."""
    require(actor, "approve", op, "Only owners and admins of the tenant approve operations.")
    with transaction.atomic():
        op = Operation.objects.select_for_update().select_related("instance").get(pk=op.pk)
        if op.status != OperationStatus.PENDING_APPROVAL:
            raise ValidationError(f"Operation #{op.pk} is {op.get_status_display().lower()}, not waiting for approval.")
        if op.approval_expires_at and op.approval_expires_at <= timezone.now():
            _expire(op)
            raise ValidationError(f"The approval request of operation #{op.pk} expired; request the operation again.")
        if actor is not None and op.triggered_by_id and actor.pk == op.triggered_by_id:
            raise PermissionDenied("Four eyes: the requester cannot approve their own operation; ask another admin.")
        op.status = OperationStatus.SCHEDULED
        op.approved_by = actor if getattr(actor, "pk", None) else None
        op.approved_at = timezone.now()
        op.add_log(f"Approved by {actor or 'the system'}.")
        op.save()
        _enqueue_start(op.pk)
    return op


def operation_reject(op: Operation, *, actor, reason: str = "") -> Operation:
    require(actor, "reject", op, "Only owners and admins of the tenant reject operations.")
    with transaction.atomic():
        op = Operation.objects.select_for_update().select_related("instance").get(pk=op.pk)
        if op.status != OperationStatus.PENDING_APPROVAL:
            raise ValidationError(f"Operation #{op.pk} is {op.get_status_display().lower()}, not waiting for approval.")
        op.status = OperationStatus.CANCELLED
        op.finished_at = timezone.now()
        op.error = f"Rejected by {actor or 'the system'}" + (f": {reason}" if reason else ".")
        op.add_log(op.error)
        op.save()
        publish("deployment.operation_cancelled", tenant=op.tenant_id, actor=actor, payload=operation_payload(op, error=op.error))
    return op


def _expire(op: Operation) -> None:
    op.status = OperationStatus.CANCELLED
    op.finished_at = timezone.now()
    op.error = "The approval request expired."
    op.add_log(op.error)
    op.save()
    publish("deployment.operation_cancelled", tenant=op.tenant_id, payload=operation_payload(op, error=op.error))


def approvals_expire(*, now=None) -> int:
    """Beat: pending approvals past their expiry are cancelled."""
    now = now or timezone.now()
    done = 0
    for pk in Operation.objects.filter(status=OperationStatus.PENDING_APPROVAL, approval_expires_at__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            op = Operation.objects.select_for_update(skip_locked=True).select_related("instance").filter(
                pk=pk, status=OperationStatus.PENDING_APPROVAL).first()
            if op is not None:
                _expire(op)
                done += 1
    return done


def operation_cancel(op: Operation, *, actor) -> Operation:
    """Cancel a pending or waiting operation now; a running one stops after its current job run
    is cancelled (no further batches, no rollback)."""
    from apps.targets.choices import ACTIVE_RUN_STATUSES
    from apps.targets.services import run_cancel

    from .rollout import finish

    require(actor, "cancel", op, "Your role does not allow cancelling this operation.")
    with transaction.atomic():
        op = Operation.objects.select_for_update().select_related("instance").get(pk=op.pk)
        if op.status in (OperationStatus.PENDING_APPROVAL, OperationStatus.SCHEDULED):
            op.cancel_requested_at = timezone.now()
            return finish(op, status=OperationStatus.CANCELLED, error=f"Cancelled by {actor or 'the system'}.", actor=actor)
        if op.status != OperationStatus.RUNNING:
            raise ValidationError(f"Operation #{op.pk} already ended ({op.get_status_display().lower()}).")
        op.cancel_requested_at = timezone.now()
        op.add_log(f"Cancel requested by {actor or 'the system'}.")
        op.save(update_fields=["cancel_requested_at", "log", "updated_at"])
        batch = op.batches.filter(status=BatchStatus.RUNNING).select_related("job_run").first()
    if batch and batch.job_run and batch.job_run.status in ACTIVE_RUN_STATUSES:
        run_cancel(batch.job_run, actor=None)
    from .rollout import enqueue_advance

    transaction.on_commit(lambda: enqueue_advance(op.pk))
    op.refresh_from_db()
    return op
