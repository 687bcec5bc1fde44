"""Deployment schedules (seed 000 `schedule_deployment`): one-time, cron or interval, fired by the
due-schedule dispatcher from `next_fire_at` (apps/core/duefire.py; the timing is recorded on a
display-only django-celery-beat PeriodicTask); pause/resume/delete; firing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.policy import policy

from ..choices import OperationKind, ScheduleType, Trigger
from ..models import DeploymentSchedule, Instance
from ..scheduling import apply_timing, build_periodic_task, first_fire, next_run_for, periodic_task_label, validate_timing
from .operations import validate_parameters

log = logging.getLogger(__name__)
REQUEST_FOR = {OperationKind.PROVISION: "provision_request", OperationKind.UPGRADE: "upgrade_request", OperationKind.SCALE: "scale_request"}


def _parameters_from_requests(operation: str, provision_request, upgrade_request, scale_request) -> dict:
    given = {"provision_request": provision_request, "upgrade_request": upgrade_request, "scale_request": scale_request}
    wanted = REQUEST_FOR.get(operation)
    for key, value in given.items():
        if value is not None and key != wanted:
            raise ValidationError({key: f"{key} does not apply to a {operation} operation"
                                        + (f" (use {wanted})." if wanted else " (it takes no request).")})
    if wanted and operation != OperationKind.PROVISION and given[wanted] is None:
        raise ValidationError({wanted: f"A {operation} needs {wanted}."})
    return validate_parameters(operation, dict(given.get(wanted) or {}) if wanted else {})


def schedule_response(schedule: DeploymentSchedule) -> dict:
    """The seed's ScheduledDeploymentResponse."""
    params = {"tenant_id": schedule.tenant_id, "operation": schedule.operation, "instance_id": schedule.instance_id}
    key = REQUEST_FOR.get(schedule.operation)
    if key:
        params[key] = schedule.parameters
    if schedule.metadata:
        params["metadata"] = schedule.metadata
    return {
        "schedule_id": str(schedule.pk),
        "schedule_type": schedule.schedule_type,
        "operation": schedule.operation,
        "scheduled_at": schedule.scheduled_at,
        "cron_expression": schedule.cron_expression,
        "interval_seconds": schedule.interval_seconds,
        "next_run_at": schedule.next_run_at,
        "enabled": schedule.enabled,
        "parameters": params,
    }


def schedule_deployment(*, actor, tenant_id: int | None, operation: str, scheduled_at: datetime, provision_request: dict | None = None,
                        upgrade_request: dict | None = None, scale_request: dict | None = None, instance_id: int | None = None,
                        triggered_by=None, cron_expression: str | None = None, interval_seconds: int | None = None,
                        metadata: dict | None = None, now: datetime | None = None) -> dict:
    """Schedule an operation: one-time (ClockedSchedule + one-off PeriodicTask), cron
    (CrontabSchedule in the tenant's time zone) or interval (60 s–30 days). Refuses past times,
    both cron and interval, invalid expressions and duplicates (same instance, operation, timing).
    Returns the seed's response dict."""
    if operation not in OperationKind.values:
        raise ValidationError({"operation": f"Unknown operation {operation!r}; use one of {', '.join(OperationKind.values)}."})
    cron_expression = (cron_expression or "").strip() or None
    validate_timing(scheduled_at=scheduled_at, cron_expression=cron_expression, interval_seconds=interval_seconds, now=now)
    parameters = _parameters_from_requests(operation, provision_request, upgrade_request, scale_request)
    if instance_id is None:
        raise ValidationError({"instance_id": "Give the instance to operate on (create it first with POST /api/v1/deployments/instances/)."})
    qs = Instance.objects.select_related("tenant")
    if actor is not None:
        qs = qs.visible_to(actor, "view")
    instance = qs.filter(pk=instance_id).first()
    if instance is None or (tenant_id is not None and instance.tenant_id != tenant_id):
        raise ValidationError({"instance_id": f"Instance {instance_id} not found."})
    if actor is not None and not policy.allows_object(actor, "add", instance) or actor is not None and not policy.allows(actor, "add", DeploymentSchedule):
        raise PermissionDenied("Your role does not allow scheduling deployments (deployment.schedule.create).")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError({"metadata": "metadata is a JSON object."})
    tz = instance.tenant.timezone or "UTC"
    user = triggered_by if triggered_by is not None else (actor if getattr(actor, "pk", None) else None)
    with transaction.atomic():
        Instance.objects.select_for_update().filter(pk=instance.pk).first()  # serialise duplicate checks per instance
        for other in DeploymentSchedule.objects.filter(instance=instance, operation=operation).select_related(
                "periodic_task__crontab", "periodic_task__interval", "periodic_task__clocked"):
            same = (other.cron_expression == cron_expression and other.interval_seconds == interval_seconds
                    and (cron_expression or interval_seconds or other.scheduled_at == scheduled_at))
            if same and other.parameters == parameters:
                raise ValidationError(f"An identical schedule already exists ({other.pk}); delete or change it instead.")
        schedule = DeploymentSchedule(tenant_id=instance.tenant_id, instance=instance, operation=operation, parameters=parameters,
                                      scheduled_at=scheduled_at, timezone=tz, metadata=metadata or {}, created_by=user)
        schedule.periodic_task = build_periodic_task(
            schedule_id=schedule.pk, scheduled_at=scheduled_at, cron_expression=cron_expression, interval_seconds=interval_seconds, tz=tz,
            description=f"{operation} of {instance.name} (managed by deployments; pause, resume or change the timing on the schedule's page)",
            name=periodic_task_label(tenant_name=instance.tenant.name, instance_name=instance.name, operation=operation, schedule_id=schedule.pk),
        )
        schedule.next_fire_at = first_fire(schedule, now=now)
        schedule.full_clean()
        schedule.save()
    return schedule_response(schedule)


def schedule_retime(schedule: DeploymentSchedule, *, actor, scheduled_at: datetime, cron_expression: str | None = None,
                    interval_seconds: int | None = None, tz: str | None = None, now: datetime | None = None) -> DeploymentSchedule:
    """Change when a schedule fires: one-time, cron (in `tz`, default the schedule's zone) or an
    interval, with the same checks as `schedule_deployment`. Its display-only PeriodicTask is
    updated in place and `next_fire_at` recomputed; a paused schedule stays paused, a one-time
    that already fired is armed again for its new time."""
    from zoneinfo import available_timezones

    _check(actor, "change", schedule)
    cron_expression = (cron_expression or "").strip() or None
    tz = (tz or schedule.timezone or "UTC").strip()
    if tz not in available_timezones():
        raise ValidationError({"timezone": f'Unknown time zone "{tz}"; use an IANA name such as "Europe/Berlin".'})
    validate_timing(scheduled_at=scheduled_at, cron_expression=cron_expression, interval_seconds=interval_seconds, now=now)
    with transaction.atomic():
        schedule = DeploymentSchedule.objects.select_for_update(of=("self",)).select_related("periodic_task", "instance__tenant").get(pk=schedule.pk)
        task = schedule.periodic_task
        was_done_one_off = task.one_off and (schedule.fire_count or task.total_run_count)
        old_clocked = task.clocked
        apply_timing(task, scheduled_at=scheduled_at, cron_expression=cron_expression, interval_seconds=interval_seconds, tz=tz)
        if was_done_one_off:
            task.total_run_count, task.last_run_at = 0, None
        task.enabled = False  # display-only: the dispatcher fires from next_fire_at
        if schedule.instance is not None:
            task.name = periodic_task_label(tenant_name=schedule.instance.tenant.name, instance_name=schedule.instance.name,
                                            operation=schedule.operation, schedule_id=schedule.pk)
        task.save()
        if old_clocked is not None and old_clocked.pk != getattr(task.clocked, "pk", None):
            old_clocked.delete()
        schedule.scheduled_at, schedule.timezone, schedule.last_error = scheduled_at, tz, ""
        if was_done_one_off:
            schedule.fire_count = 0
        schedule.next_fire_at = first_fire(schedule, now=now)
        schedule.full_clean()
        schedule.save()
    return schedule


def schedule_pause(schedule: DeploymentSchedule, *, actor) -> DeploymentSchedule:
    """Stop firing (a fire already claimed for the next seconds is dropped at its due time)."""
    _check(actor, "pause", schedule)
    DeploymentSchedule.objects.filter(pk=schedule.pk).update(enabled=False, next_fire_at=None)
    schedule.enabled, schedule.next_fire_at = False, None
    return schedule


def schedule_resume(schedule: DeploymentSchedule, *, actor) -> DeploymentSchedule:
    """Fire again from the next due time (runs missed while paused are not replayed)."""
    _check(actor, "resume", schedule)
    if schedule.schedule_type == ScheduleType.ONE_TIME and (schedule.fire_count or schedule.scheduled_at <= timezone.now()):
        raise ValidationError("This one-time schedule has already fired or its time has passed; create a new one.")
    with transaction.atomic():
        schedule = DeploymentSchedule.objects.select_for_update(of=("self",)).select_related(
            "periodic_task__crontab", "periodic_task__interval").get(pk=schedule.pk)
        schedule.enabled = True
        schedule.next_fire_at = first_fire(schedule)
        schedule.save(update_fields=["enabled", "next_fire_at", "updated_at"])
    return schedule


def schedule_delete(schedule: DeploymentSchedule, *, actor) -> None:
    _check(actor, "delete", schedule)
    with transaction.atomic():
        task = schedule.periodic_task
        schedule.delete()
        task.delete()


def _check(actor, action: str, schedule) -> None:
    if actor is not None and not policy.allows_object(actor, action, schedule):
        raise PermissionDenied("Your role does not allow changing this schedule.")


def schedule_fire(*, schedule_id, now: datetime | None = None):
    """Fire one schedule now: request its operation (as its creator, trigger "schedule"). A fire
    before `scheduled_at` (cron) is ignored; a refused request is recorded in `last_error`."""
    now = now or timezone.now()
    schedule = DeploymentSchedule.objects.select_related("instance", "created_by", "periodic_task").filter(pk=schedule_id).first()
    if schedule is None:
        return None
    if schedule.scheduled_at > now and schedule.schedule_type == ScheduleType.RECURRING:
        return None
    # Claim this fire (the dispatcher and the sweeper may both try a one-time schedule).
    one_time = schedule.schedule_type == ScheduleType.ONE_TIME
    changes = {"last_fired_at": now, "fire_count": schedule.fire_count + 1, **({"next_fire_at": None} if one_time else {})}
    if not DeploymentSchedule.objects.filter(pk=schedule.pk, fire_count=schedule.fire_count).update(**changes):
        return None
    if one_time and schedule.fire_count:
        return None
    return _request_operation(schedule)


def schedules_fire_due(*, ids: list, due: datetime, now: datetime | None = None) -> dict:
    """The dispatcher's fire of a chunk of schedules claimed for `due`: stamp them fired in one
    update (`last_fired_at` ≥ due, whatever the worker's clock; skipping paused ones, one-time ones that already fired, and a fire of this due time
    that already ran — a redelivered task), then request each operation."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = (DeploymentSchedule.objects.select_for_update(of=("self",)).filter(pk__in=ids, enabled=True)
                 .filter(Q(last_fired_at__isnull=True) | Q(last_fired_at__lt=due))
                 .exclude(periodic_task__clocked__isnull=False, fire_count__gt=0))
        pks = list(fresh.values_list("pk", flat=True))
        DeploymentSchedule.objects.filter(pk__in=pks).update(last_fired_at=max(now, due), fire_count=F("fire_count") + 1)
    requested = 0
    for schedule in DeploymentSchedule.objects.select_related("instance", "created_by", "periodic_task").filter(pk__in=pks):
        requested += _request_operation(schedule) is not None
    return {"fired": len(pks), "requested": requested}


def _request_operation(schedule: DeploymentSchedule):
    from .operations import operation_request

    try:
        op = operation_request(actor=None, instance=schedule.instance, operation=schedule.operation, parameters=schedule.parameters,
                               trigger=Trigger.SCHEDULE, schedule=schedule, triggered_by=schedule.created_by,
                               require_window=bool((schedule.metadata or {}).get("require_window")))
    except ValidationError as exc:
        DeploymentSchedule.objects.filter(pk=schedule.pk).update(last_error="; ".join(exc.messages)[:2000])
        log.warning("schedule %s fired but its operation was refused: %s", schedule.pk, exc.messages)
        return None
    if schedule.last_error:
        DeploymentSchedule.objects.filter(pk=schedule.pk).update(last_error="")
    return op


def schedules_fire_missed(*, now: datetime | None = None, grace_seconds: int = 60) -> int:
    """Sweeper: a one-time schedule whose fire never ran (the broker lost the message, nothing
    dispatched) fires now, late, once."""
    now = now or timezone.now()
    missed = DeploymentSchedule.objects.filter(fire_count=0, enabled=True, periodic_task__clocked__isnull=False,
                                               scheduled_at__lt=now - timedelta(seconds=grace_seconds)).values_list("pk", flat=True)[:200]
    fired = 0
    for pk in list(missed):
        log.warning("one-time deployment schedule %s missed its time; firing it now", pk)
        schedule_fire(schedule_id=pk, now=now)
        fired += 1
    return fired


__all__ = ["schedules_fire_missed", "schedules_fire_due", "schedule_deployment", "schedule_pause", "schedule_resume", "schedule_delete",
           "schedule_fire", "schedule_response", "next_run_for"]
