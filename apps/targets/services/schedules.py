"""Schedules of jobs: CRUD (each save recomputes `next_fire_at`), firing (by core's due-schedule
dispatcher, in chunks), and the dead-man's switch."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.audit import config_change, config_deleted
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant

from ..choices import RunStatus, Trigger
from ..definition import validate_params
from ..models import Job, JobSchedule
from ..scheduling import delete_periodic_task, previous_run, sync_periodic_task

log = logging.getLogger(__name__)
FIELDS = {"name", "cron", "interval_seconds", "timezone", "params", "enabled", "grace_seconds"}


def _check(schedule: JobSchedule, targets, groups) -> None:
    for row in [*(targets or []), *(groups or [])]:
        if row.tenant_id != schedule.tenant_id:
            raise ValidationError({"targets": f"{row} belongs to another tenant."})
    version = schedule.job.current_version
    if version is not None:
        validate_params(version.parameters_schema, schedule.params or {})


def schedule_create(*, actor, job: Job, name: str, targets=(), groups=(), **fields) -> JobSchedule:
    """Add a schedule (its own parameters and targets) to a job: its `next_fire_at` and its
    display-only PeriodicTask."""
    if actor is not None and not policy.allows_object(actor, "change", job):
        raise PermissionDenied("Your role does not allow scheduling this job.")
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValidationError({k: "Unknown field." for k in unknown})
    schedule = JobSchedule(job=job, tenant_id=job.tenant_id, name=name, **fields)
    assign_tenant(schedule, actor=actor)
    _check(schedule, targets, groups)
    with transaction.atomic(), config_change(schedule, actor=actor):
        schedule.full_clean()
        schedule.save()
        schedule.targets.set(targets)
        schedule.groups.set(groups)
        sync_periodic_task(schedule)
    return schedule


def schedule_update(schedule: JobSchedule, *, actor, targets=None, groups=None, **fields) -> JobSchedule:
    """Change a schedule. Writes only the fields whose value differs from `schedule` (the row as
    the caller saw it), onto the row re-read under a lock: the dispatcher's `last_fired_at` and
    another edit's fields, written since `schedule` was loaded, are kept. Returns the updated row."""
    if actor is not None and not policy.allows_object(actor, "change", schedule):
        raise PermissionDenied("Your role does not allow changing this schedule.")
    fields.pop("job", None)
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValidationError({k: "Unknown field." for k in unknown})
    changed = {key: value for key, value in fields.items() if getattr(schedule, key) != value}
    with transaction.atomic():
        row = JobSchedule.objects.select_for_update(of=("self",)).select_related("job").get(pk=schedule.pk)
        for key, value in changed.items():
            setattr(row, key, value)
        _check(row, targets, groups)
        with config_change(row, actor=actor) as change:
            row.full_clean()
            row.save(update_fields=[*changed, "updated_at"])
            change["fields"] = [name for name, given in (("targets", targets), ("groups", groups)) if given is not None]
            if targets is not None:
                row.targets.set(targets)
            if groups is not None:
                row.groups.set(groups)
            sync_periodic_task(row)
    return row


def schedule_delete(schedule: JobSchedule, *, actor) -> None:
    if actor is not None and not policy.allows_object(actor, "delete", schedule):
        raise PermissionDenied("Your role does not allow deleting this schedule.")
    with transaction.atomic():
        config_deleted(schedule, actor=actor)
        delete_periodic_task(schedule)
        schedule.delete()


def schedule_fire(*, schedule_id: int, now=None):
    """Fire one schedule now: queue a run with the schedule's parameters and targets. A refusal
    (overlap skip, invalid parameters after a job edit, no target) is stored on the schedule and
    published; it never affects other schedules."""
    schedule = JobSchedule.objects.select_related("job", "job__current_version").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled or not schedule.job.enabled:
        return None
    JobSchedule.objects.filter(pk=schedule.pk).update(last_fired_at=now or timezone.now())
    return _start_run(schedule)


def schedules_fire_due(*, ids: list, due, now=None) -> dict:
    """The dispatcher's fire of a chunk of schedules claimed for `due`: stamp them fired in one
    update (`last_fired_at` ≥ due, whatever the worker's clock; skipping disabled ones and a fire of this due time that already ran — a redelivered
    task), then queue each run."""
    now = now or timezone.now()
    with transaction.atomic():
        fresh = (JobSchedule.objects.select_for_update(of=("self",)).filter(pk__in=ids, enabled=True, job__enabled=True)
                 .filter(Q(last_fired_at__isnull=True) | Q(last_fired_at__lt=due)))
        pks = list(fresh.values_list("pk", flat=True))
        JobSchedule.objects.filter(pk__in=pks).update(last_fired_at=max(now, due))
    started = 0
    for schedule in JobSchedule.objects.select_related("job", "job__current_version", "tenant").filter(pk__in=pks):
        started += _start_run(schedule) is not None
    return {"fired": len(pks), "started": started}


def _start_run(schedule: JobSchedule):
    from .runs import job_run_create

    targets, groups = list(schedule.targets.all()), list(schedule.groups.all())
    try:
        run = job_run_create(
            schedule.job, actor=None, params=schedule.params, trigger=Trigger.SCHEDULE, schedule=schedule,
            targets=targets if (targets or groups) else None, groups=groups if (targets or groups) else None,
        )
    except ValidationError as exc:
        message = "; ".join(exc.messages)
        JobSchedule.objects.filter(pk=schedule.pk).update(last_error=message[:4000])
        publish("job_schedule.skipped", tenant=schedule.tenant_id, payload={
            "id": schedule.pk, "object_type": "targets.jobschedule", "title": f"Schedule {schedule} did not start a run",
            "url": f"/admin/targets/jobschedule/{schedule.pk}/change/", "job_id": schedule.job_id, "reason": message,
        })
        return None
    if schedule.last_error:
        JobSchedule.objects.filter(pk=schedule.pk).update(last_error="")
    return run


def schedules_check_missed(*, now=None) -> int:
    """Dead-man's switch: a schedule whose due run has not started within its grace time
    publishes `job_schedule.missed` (once per due time) with a notify block."""
    now = now or timezone.now()
    raised = 0
    for schedule in JobSchedule.objects.filter(enabled=True, job__enabled=True).select_related("job"):
        try:
            due = previous_run(schedule, now=now)
        except Exception:
            log.exception("schedule %s: cannot compute its previous run", schedule.pk)
            continue
        if due is None or due < schedule.created_at or now - due < timedelta(seconds=schedule.grace_seconds):
            continue
        if schedule.last_missed_alert_for and schedule.last_missed_alert_for >= due:
            continue
        started = schedule.runs.filter(created_at__gte=due - timedelta(seconds=5)).exclude(status=RunStatus.QUEUED).exists()
        if started:
            continue
        JobSchedule.objects.filter(pk=schedule.pk).update(last_missed_alert_for=due)
        title = f"Scheduled run of {schedule.job.name} ({schedule.name}) due {due:%Y-%m-%d %H:%M %Z} has not started"
        publish("job_schedule.missed", tenant=schedule.tenant_id, payload={
            "id": schedule.pk, "object_type": "targets.jobschedule", "title": title,
            "url": f"/admin/targets/jobschedule/{schedule.pk}/change/", "job_id": schedule.job_id,
            "due_at": due.isoformat(), "grace_seconds": schedule.grace_seconds, "last_error": schedule.last_error,
            "notify": {"type": "job_schedule_missed", "priority": "high", "title": title, "roles": ["owner", "admin"],
                       "action_url": f"/admin/targets/jobschedule/{schedule.pk}/change/", "action_label": "Open schedule"},
        })
        raised += 1
    return raised
