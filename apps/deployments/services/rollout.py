"""Running operations: start (maintenance window wait, batches), advance after each job run
(health gate, next batch, rollback), finish (instance state, window closed, events), sweeper.

The state lives in rows: an `Operation` in status running has batches; the batch in status
`running` points at its JobRun. `operation_advance` is idempotent — called by the job_run event
handler, by the sweeper, or twice — because every transition is a conditional update."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.events import publish

from ..choices import (
    BatchStatus,
    InstanceStatus,
    OperationKind,
    OperationStatus,
    Phase,
    Strategy,
)
from ..models import Instance, Operation, OperationBatch
from .common import operation_payload

log = logging.getLogger(__name__)
K = OperationKind
TRANSITIONAL = {K.PROVISION: InstanceStatus.PROVISIONING, K.UPGRADE: InstanceStatus.UPGRADING, K.SCALE: InstanceStatus.SCALING}
ENDPOINT_LINK = "deployments.instance"


def enqueue_advance(operation_id: int) -> None:
    from ..tasks import advance_operation_task
    from .operations import _safe_delay

    _safe_delay(advance_operation_task, operation_id)


def plan_batches(target_ids: list[int], *, strategy: str, batch_percent: int) -> list[list[int]]:
    """Split the targets into batches: one for all-at-once, ceil(n × percent) per rolling batch."""
    if strategy != Strategy.ROLLING or batch_percent >= 100:
        return [list(target_ids)]
    size = max(1, math.ceil(len(target_ids) * batch_percent / 100))
    return [target_ids[i:i + size] for i in range(0, len(target_ids), size)]


def window_is_open(op: Operation) -> bool:
    """A maintenance window (not one opened by an operation) is active for the instance now."""
    from apps.maintenance.choices import WindowSource
    from apps.maintenance.selectors import active_windows

    return any(w.source != WindowSource.OPERATION for w in active_windows(tenant_id=op.tenant_id, obj=op.instance))


def operation_start(*, operation_id: int) -> Operation | None:
    """Start a scheduled operation (the start task and the sweeper call this): wait for a window
    when required, else mark it running, open a maintenance window for the instance, plan the
    batches and launch the first one. Returns None when there was nothing to start."""
    from apps.maintenance.services import window_open

    with transaction.atomic():
        op = (Operation.objects.select_for_update(skip_locked=True, of=("self",)).select_related("instance", "instance__tenant", "job")
              .filter(pk=operation_id, status=OperationStatus.SCHEDULED).first())
        if op is None:
            return None
        if op.require_window and not window_is_open(op):
            if op.waiting_since is None:
                op.waiting_since = timezone.now()
                op.add_log("Waiting for a maintenance window of the instance or tenant.")
                op.save(update_fields=["waiting_since", "log", "updated_at"])
            return op
        instance = Instance.objects.select_for_update().get(pk=op.instance_id)
        targets = list(instance.targets.filter(enabled=True).order_by("name").values_list("pk", "name"))
        if not targets:
            return finish(op, status=OperationStatus.FAILED, error="The instance has no enabled target.")
        op.status = OperationStatus.RUNNING
        op.started_at = timezone.now()
        op.from_version = instance.version
        op.instance_status_before = instance.status
        if op.waiting_since:
            op.add_log("A maintenance window is open; starting.")
        window = window_open(tenant_id=op.tenant_id, name=f"Deployment: {op.get_operation_display().lower()} of {instance.name} (#{op.pk})",
                             objects=[instance])
        op.window_id = window.pk
        names = dict(targets)
        plan = plan_batches([pk for pk, _ in targets], strategy=op.strategy, batch_percent=op.batch_percent)
        OperationBatch.objects.bulk_create([
            OperationBatch(operation=op, phase=Phase.FORWARD, index=i, target_ids=ids, target_names=[names[t] for t in ids])
            for i, ids in enumerate(plan)
        ])
        op.add_log(f"Started: {len(targets)} target(s) in {len(plan)} batch(es) ({op.get_strategy_display().lower()}); "
                   f"maintenance window #{window.pk} opened.")
        op.save()
        if op.operation in TRANSITIONAL:
            Instance.objects.filter(pk=instance.pk).update(status=TRANSITIONAL[op.operation], updated_at=timezone.now())
        publish("deployment.operation_started", tenant=op.tenant_id, actor=op.triggered_by, payload=operation_payload(op, batches=len(plan)))
        _launch(op, op.batches.get(phase=Phase.FORWARD, index=0))
    return op


def job_params(op: Operation, batch: OperationBatch) -> dict:
    """The job's parameters: what the operation knows, filtered to what the job's schema declares."""
    instance = op.instance
    p = op.parameters or {}
    rollback = batch.phase == Phase.ROLLBACK
    target_version = p.get("to_version") or p.get("version") or instance.version
    values = {
        "operation": op.operation, "instance": instance.name, "instance_id": instance.pk, "environment": instance.environment,
        "version": op.from_version if rollback else target_version, "to_version": op.from_version if rollback else target_version,
        "from_version": target_version if rollback else op.from_version, "rollback": rollback,
        "cpu_cores": p.get("cpu_cores", instance.cpu_cores), "memory_gb": p.get("memory_gb", instance.memory_gb),
        "storage_gb": p.get("storage_gb", instance.storage_gb), "batch": batch.index + 1,
        "batches": op.batches.filter(phase=batch.phase).count(), "operation_id": op.pk, "reason": p.get("reason", ""),
    }
    schema = op.job.current_version.parameters_schema if op.job and op.job.current_version else {}
    declared = set((schema or {}).get("properties", {}))
    return {k: v for k, v in values.items() if k in declared}


def _launch(op: Operation, batch: OperationBatch) -> None:
    """Start one batch's job run (in the caller's transaction; the run is enqueued on commit)."""
    from django.core.exceptions import ValidationError

    from apps.targets.choices import Trigger as JobTrigger
    from apps.targets.models import Target
    from apps.targets.services import job_run_create

    targets = list(Target.objects.filter(pk__in=batch.target_ids, tenant_id=op.tenant_id))
    try:
        with transaction.atomic():
            run = job_run_create(op.job, actor=None, params=job_params(op, batch), targets=targets, groups=[], trigger=JobTrigger.DEPLOYMENT)
    except ValidationError as exc:
        batch.status = BatchStatus.FAILED
        batch.finished_at = timezone.now()
        batch.gate_detail = "; ".join(exc.messages)
        batch.save()
        op.add_log(f"{batch.get_phase_display()} batch {batch.index + 1} could not start: {batch.gate_detail}")
        op.save(update_fields=["log", "updated_at"])
        transaction.on_commit(lambda: enqueue_advance(op.pk))
        return
    batch.status = BatchStatus.RUNNING
    batch.job_run = run
    batch.started_at = timezone.now()
    batch.save()
    op.add_log(f"{batch.get_phase_display()} batch {batch.index + 1}: job run #{run.pk} on {', '.join(batch.target_names[:10])}"
               + (" …" if len(batch.target_names) > 10 else ""))
    op.save(update_fields=["log", "updated_at"])


def health_gate(op: Operation, batch: OperationBatch) -> tuple[bool, str]:
    """The batch passes when every step of its job run succeeded (or was skipped for the other
    protocol) and every enabled monitoring endpoint linked to the instance is up now (network
    endpoints are checked right away; heartbeats by their current status)."""
    from apps.monitoring.choices import EndpointKind, EndpointStatus, ResultStatus
    from apps.monitoring.models import Endpoint
    from apps.monitoring.services import endpoint_check_now
    from apps.targets.choices import RunStatus, StepStatus

    run = batch.job_run
    if run is None:
        return False, batch.gate_detail or "The batch's job run did not start."
    bad_steps = run.steps.exclude(status__in=[StepStatus.SUCCEEDED, StepStatus.SKIPPED]).count()
    if run.status != RunStatus.SUCCEEDED or bad_steps:
        first = run.steps.exclude(status__in=[StepStatus.SUCCEEDED, StepStatus.SKIPPED]).order_by("target_name", "step_index").first()
        where = f" (first: {first.target_name} / {first.step_name}: {first.status} {(first.error or first.stderr)[:200].strip()})" if first else ""
        return False, f"Job run #{run.pk} {run.status}; {bad_steps} step(s) did not succeed{where}. {run.error[:300]}".strip()
    if not op.health_gate:
        return True, f"Job run #{run.pk} succeeded (health gate off)."
    endpoints = list(Endpoint.objects.filter(tenant_id=op.tenant_id, linked_type=ENDPOINT_LINK, linked_id=op.instance_id, enabled=True))
    if not endpoints:
        return True, f"Job run #{run.pk} succeeded; no monitoring endpoint is linked to the instance."
    down = []
    for e in endpoints:
        if e.kind == EndpointKind.HEARTBEAT:
            if e.status == EndpointStatus.DOWN:
                down.append(f"{e.name} (heartbeat down)")
            continue
        result = endpoint_check_now(e, actor=None)
        if result.status == ResultStatus.DOWN:
            down.append(f"{e.name} ({result.error or result.status_code or 'down'})")
    if down:
        return False, f"Job run #{run.pk} succeeded but endpoint(s) are down: {'; '.join(down)}."
    return True, f"Job run #{run.pk} succeeded; {len(endpoints)} endpoint(s) up."


def operation_advance(*, operation_id: int) -> Operation | None:
    """Move a running operation on after its current batch's job run ended: health gate, next
    batch, rollback or finish. Idempotent; safe to call at any time."""
    from apps.targets.choices import FINAL_RUN_STATUSES

    batch = (OperationBatch.objects.select_related("job_run", "operation")
             .filter(operation_id=operation_id, operation__status=OperationStatus.RUNNING)
             .filter(status=BatchStatus.RUNNING).order_by("-phase", "index").first())
    op = Operation.objects.select_related("instance", "job", "job__current_version").filter(pk=operation_id).first()
    if op is None or op.status != OperationStatus.RUNNING:
        return None
    gate = None
    if batch is not None:
        if batch.job_run is None or batch.job_run.status not in FINAL_RUN_STATUSES:
            return op  # still running: the job_run event will call again
        # Claim the batch for its gate, so two callers never check and launch twice.
        if not OperationBatch.objects.filter(pk=batch.pk, status=BatchStatus.RUNNING).update(status=BatchStatus.CHECKING, finished_at=timezone.now()):
            return op
        if op.cancel_requested_at:
            gate = (False, "Cancelled.")
        elif batch.phase == Phase.ROLLBACK:
            gate = _steps_only(batch)
        else:
            gate = health_gate(op, batch)
    with transaction.atomic():
        op = Operation.objects.select_for_update(of=("self",)).select_related("instance", "job").get(pk=operation_id)
        if op.status != OperationStatus.RUNNING:
            return op
        if gate is not None:
            batch.refresh_from_db()
            passed, detail = gate
            batch.status = BatchStatus.SUCCEEDED if passed else BatchStatus.FAILED
            batch.gate_passed = passed
            batch.gate_detail = detail[:4000]
            batch.save()
            op.add_log(f"{batch.get_phase_display()} batch {batch.index + 1} {'passed' if passed else 'FAILED'} the health gate: {detail}")
        return _decide(op)


def _steps_only(batch: OperationBatch) -> tuple[bool, str]:
    from apps.targets.choices import RunStatus

    run = batch.job_run
    ok = run is not None and run.status == RunStatus.SUCCEEDED
    return ok, f"Rollback job run #{run.pk if run else '-'} {run.status if run else 'did not start'}."


def _decide(op: Operation) -> Operation:
    """Given the batches' rows, what comes next (called under the operation's row lock)."""
    batches = list(op.batches.all())
    if any(b.status in (BatchStatus.RUNNING, BatchStatus.CHECKING) for b in batches):
        return op
    forward = [b for b in batches if b.phase == Phase.FORWARD]
    rollback = [b for b in batches if b.phase == Phase.ROLLBACK]
    if op.cancel_requested_at:
        return finish(op, status=OperationStatus.CANCELLED, error="Cancelled while running; later batches were not started.")
    if rollback:
        failed = [b for b in rollback if b.status == BatchStatus.FAILED]
        if failed:
            return finish(op, status=OperationStatus.FAILED, error=f"The rollback to {op.from_version} failed too: {failed[0].gate_detail}")
        pending = [b for b in rollback if b.status == BatchStatus.PENDING]
        if pending:
            _launch(op, pending[0])
            op.save()
            return op
        return finish(op, status=OperationStatus.ROLLED_BACK,
                      error=f"Rolled back to {op.from_version}: {next((b.gate_detail for b in forward if b.status == BatchStatus.FAILED), '')}")
    failed = [b for b in forward if b.status == BatchStatus.FAILED]
    if failed:
        done = [b for b in forward if b.status in (BatchStatus.SUCCEEDED, BatchStatus.FAILED) and b.job_run_id]
        if op.operation == K.UPGRADE and op.rollback_on_failure and done and op.from_version:
            target_ids = [t for b in done for t in b.target_ids]
            names = [n for b in done for n in b.target_names]
            op.phase = Phase.ROLLBACK
            op.add_log(f"Batch {failed[0].index + 1} failed; rolling back {len(target_ids)} target(s) to {op.from_version}.")
            batch = OperationBatch.objects.create(operation=op, phase=Phase.ROLLBACK, index=0, target_ids=target_ids, target_names=names)
            _launch(op, batch)
            op.save()
            return op
        return finish(op, status=OperationStatus.FAILED, error=f"Batch {failed[0].index + 1} failed: {failed[0].gate_detail}")
    pending = [b for b in forward if b.status == BatchStatus.PENDING]
    if pending:
        _launch(op, pending[0])
        op.save()
        return op
    return finish(op, status=OperationStatus.SUCCEEDED)


def _apply_success(op: Operation, instance: Instance) -> None:
    p = op.parameters or {}
    if op.operation == K.PROVISION:
        instance.status = InstanceStatus.ACTIVE
        instance.version = p.get("version") or instance.version
        for key in ("cpu_cores", "memory_gb", "storage_gb"):
            setattr(instance, key, p.get(key, getattr(instance, key)))
        if p.get("config"):
            instance.config = {**instance.config, **p["config"]}
    elif op.operation == K.UPGRADE:
        instance.previous_version = op.from_version
        instance.version = p["to_version"]
        instance.status = InstanceStatus.ACTIVE
    elif op.operation == K.SCALE:
        for key in ("cpu_cores", "memory_gb", "storage_gb"):
            setattr(instance, key, p.get(key, getattr(instance, key)))
        instance.status = InstanceStatus.ACTIVE
    elif op.operation == K.SUSPEND:
        instance.status = InstanceStatus.SUSPENDED
    elif op.operation == K.RESUME:
        instance.status = InstanceStatus.ACTIVE
    elif op.operation == K.DESTROY:
        instance.status = InstanceStatus.DESTROYED


def finish(op: Operation, *, status: str, error: str = "", actor=None) -> Operation:
    """End an operation (under its row lock): instance state, window closed, event published."""
    from apps.maintenance.models import MaintenanceWindow
    from apps.maintenance.services import window_close

    ran = op.status == OperationStatus.RUNNING
    instance = Instance.objects.select_for_update().get(pk=op.instance_id)
    if status == OperationStatus.SUCCEEDED:
        _apply_success(op, instance)
    elif ran and status == OperationStatus.ROLLED_BACK:
        instance.status = op.instance_status_before or InstanceStatus.ACTIVE
        instance.version = op.from_version
    elif ran:
        started = op.batches.exclude(job_run__isnull=True).exists()
        instance.status = InstanceStatus.FAILED if started else (op.instance_status_before or instance.status)
    instance.save(update_fields=["status", "version", "previous_version", "cpu_cores", "memory_gb", "storage_gb", "config", "updated_at"])
    op.status = status
    op.error = error[:20000]
    op.finished_at = timezone.now()
    op.add_log(f"Finished: {op.get_status_display().lower()}." + (f" {error}" if error else ""))
    if op.window_id:
        window = MaintenanceWindow.objects.filter(pk=op.window_id).first()
        if window is not None:
            window_close(window)
    op.save()
    name = {OperationStatus.SUCCEEDED: "deployment.operation_succeeded", OperationStatus.FAILED: "deployment.operation_failed",
            OperationStatus.ROLLED_BACK: "deployment.operation_rolled_back", OperationStatus.CANCELLED: "deployment.operation_cancelled"}[status]
    payload = operation_payload(op, error=op.error, duration_seconds=(op.finished_at - op.started_at).total_seconds() if op.started_at else None,
                                instance_status=instance.status, version=instance.version)
    if status in (OperationStatus.FAILED, OperationStatus.ROLLED_BACK) or (status == OperationStatus.SUCCEEDED and op.triggered_by_id):
        ok = status == OperationStatus.SUCCEEDED
        payload["notify"] = {
            "type": "deployment_operation_succeeded" if ok else "deployment_operation_failed",
            "priority": "low" if ok else "high",
            "title": payload["title"], "message": op.error or f"Instance {instance.name} is {instance.status} at version {instance.version}.",
            "user_ids": [op.triggered_by_id] if op.triggered_by_id else [], "roles": [] if ok else ["owner", "admin"],
            "action_url": payload["url"], "action_label": "Open operation",
        }
    publish(name, tenant=op.tenant_id, actor=actor, payload=payload)
    return op


def operations_sweep(*, now=None) -> dict:
    """Beat: start operations whose window opened (or whose start task was lost), advance running
    ones whose current job run ended without an advance (lost event/task, worker restart), and
    release gates left half-way by a dead worker."""
    from apps.targets.choices import FINAL_RUN_STATUSES

    now = now or timezone.now()
    started = advanced = 0
    stale = now - timedelta(seconds=settings.DEPLOYMENTS_STALE_SECONDS)
    for pk in Operation.objects.filter(status=OperationStatus.SCHEDULED, updated_at__lt=now - timedelta(seconds=5)).values_list("pk", flat=True)[:500]:
        op = operation_start(operation_id=pk)
        if op is not None and op.status != OperationStatus.SCHEDULED:
            started += 1
    OperationBatch.objects.filter(status=BatchStatus.CHECKING, finished_at__lt=stale).update(status=BatchStatus.RUNNING)
    due = (OperationBatch.objects.filter(operation__status=OperationStatus.RUNNING)
           .filter(status=BatchStatus.RUNNING, job_run__status__in=FINAL_RUN_STATUSES).values_list("operation_id", flat=True).distinct()[:500])
    for pk in list(due):
        operation_advance(operation_id=pk)
        advanced += 1
    return {"started": started, "advanced": advanced}
