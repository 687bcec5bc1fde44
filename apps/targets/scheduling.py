"""Schedules: validation, next-run preview (croniter, in the schedule's time zone, DST-safe), the
next fire after a claimed one (the due set `targets.schedule`, fired by core's dispatcher from
`next_fire_at`) and the sync of each `JobSchedule` to its display-only PeriodicTask."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.cron import cron_next, cron_prev, cron_problem, cron_runs

TASK_NAME = "targets.run_schedule"


def periodic_task_name(schedule) -> str:
    """Beat's row as people read it: tenant · job / schedule · operation (· the schedule's id)."""
    return f"{schedule.tenant.name} · {schedule.job.name} / {schedule.name} · run job · #{schedule.pk}"[:200]


def validate_schedule_fields(schedule) -> None:
    errors = {}
    if bool(schedule.cron) == bool(schedule.interval_seconds):
        errors["cron"] = "Give either a cron expression or an interval, not both."
    elif schedule.cron and cron_problem(schedule.cron):
        errors["cron"] = cron_problem(schedule.cron)
    if schedule.timezone not in available_timezones():
        errors["timezone"] = f'Unknown time zone "{schedule.timezone}".'
    if not isinstance(schedule.params, dict):
        errors["params"] = "Parameters are a JSON object."
    if errors:
        raise ValidationError(errors)


def next_runs(schedule, *, count: int = 10, start: datetime | None = None) -> list[datetime]:
    """The next `count` fire times, computed in the schedule's zone (returned zone-aware)."""
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return []
    now = (start or timezone.now()).astimezone(zone)
    if schedule.interval_seconds:
        base = schedule.last_fired_at.astimezone(zone) if schedule.last_fired_at else now
        step = timedelta(seconds=schedule.interval_seconds)
        first = base + step
        while first < now:
            first += step
        return [first + step * i for i in range(count)]
    if not schedule.cron:
        return []
    return cron_runs(schedule.cron, after=now, tz=schedule.timezone, count=count)  # [] when it never fires


def previous_run(schedule, *, now: datetime | None = None) -> datetime | None:
    """When the schedule last should have fired (for the dead-man's switch)."""
    now = now or timezone.now()
    if schedule.interval_seconds:
        if schedule.last_fired_at is None:
            return None
        due = schedule.last_fired_at + timedelta(seconds=schedule.interval_seconds)
        return due if due <= now else None
    return cron_prev(schedule.cron, before=now, tz=schedule.timezone)


def first_fire(schedule, *, now: datetime | None = None) -> datetime | None:
    """The `next_fire_at` of a schedule as saved (None: it or its job is disabled, or a cron no
    date matches)."""
    if not (schedule.enabled and schedule.job.enabled):
        return None
    runs = next_runs(schedule, count=1, start=now)
    return runs[0].astimezone(ZoneInfo("UTC")) if runs else None


@lru_cache(maxsize=4096)
def _cron_next(expression: str, after: datetime, tz: str) -> datetime | None:
    return cron_next(expression, after=after, tz=tz)  # co-due schedules mostly share (expression, due, zone)


def next_fire_after(schedule, due: datetime, now: datetime) -> datetime | None:
    """The due set's step: the fire after the claimed `due`. Runs missed while nothing
    dispatched (beat down) fire once, late, not replayed."""
    after = max(now, due)
    if schedule.interval_seconds:
        step = timedelta(seconds=schedule.interval_seconds)
        nxt = due + step
        if nxt <= after:
            nxt += step * ((after - nxt) // step + 1)
        return nxt
    return _cron_next(schedule.cron, after, schedule.timezone) if schedule.cron else None


def sync_periodic_task(schedule) -> None:
    """Recompute the schedule's `next_fire_at` and create or update its PeriodicTask: a
    display-only record for beat's admin (never enabled; the dispatcher fires the schedule)."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    nxt = first_fire(schedule)
    if schedule.next_fire_at != nxt:
        type(schedule).objects.filter(pk=schedule.pk).update(next_fire_at=nxt)
        schedule.next_fire_at = nxt
    values = {
        "task": TASK_NAME,
        "kwargs": json.dumps({"schedule_id": schedule.pk}),
        "queue": "jobs",
        "enabled": False,
        "description": f"Job {schedule.job.name!r}, schedule {schedule.name!r} (managed by the targets app; display only: "
                       "it fires from the schedule's next_fire_at, change it on the schedule's page)",
        "interval": None,
        "crontab": None,
    }
    if schedule.interval_seconds:
        values["interval"], _ = IntervalSchedule.objects.get_or_create(every=schedule.interval_seconds, period=IntervalSchedule.SECONDS)
    else:
        minute, hour, dom, month, dow = schedule.cron.split()
        values["crontab"], _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone=schedule.timezone,
        )
    values["name"] = periodic_task_name(schedule)
    task = PeriodicTask.objects.filter(pk=schedule.periodic_task_id).first() if schedule.periodic_task_id else None
    if task is None:
        task = PeriodicTask(**values)
    else:
        for key, value in values.items():
            setattr(task, key, value)
    task.save()  # renamed with the schedule or its job
    if schedule.periodic_task_id != task.pk:
        type(schedule).objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task


def delete_periodic_task(schedule) -> None:
    from django_celery_beat.models import PeriodicTask

    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
