"""Schedule timing: validation of cron/interval/time, next run (croniter in the tenant's zone,
DST-safe), the next fire after a claimed one (the due set `deployments.schedule`, fired by the
dispatcher in apps/core/duefire.py) and the display-only django-celery-beat row that records each
schedule's timing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.cron import cron_next, validate_cron

TASK_NAME = "deployments.fire_schedule"
MIN_INTERVAL = 60
MAX_INTERVAL = 2_592_000  # 30 days


def validate_timing(*, scheduled_at: datetime, cron_expression: str | None, interval_seconds: int | None, now: datetime | None = None) -> None:
    """400-worthy checks of a schedule's timing, with messages a person can act on."""
    now = now or timezone.now()
    if scheduled_at is None:
        raise ValidationError({"scheduled_at": "Give the time the schedule fires (one-time) or starts (recurring)."})
    if timezone.is_naive(scheduled_at):
        raise ValidationError({"scheduled_at": "Give the time with a UTC offset, e.g. 2030-12-01T02:00:00Z."})
    if cron_expression and interval_seconds is not None:
        raise ValidationError({"cron_expression": "Give either a cron expression or an interval, not both."})
    if cron_expression is not None and cron_expression != "":
        validate_cron(cron_expression, field="cron_expression")
    if interval_seconds is not None and not MIN_INTERVAL <= interval_seconds <= MAX_INTERVAL:
        raise ValidationError({"interval_seconds": f"The interval must be between {MIN_INTERVAL} seconds and "
                                                   f"{MAX_INTERVAL} seconds (30 days); got {interval_seconds}."})
    if not cron_expression and interval_seconds is None and scheduled_at <= now:
        raise ValidationError({"scheduled_at": f"{scheduled_at.isoformat()} is in the past; a one-time schedule must be in the future."})


def next_run_for(*, scheduled_at: datetime, cron_expression: str | None, interval_seconds: int | None, tz: str,
                 last_fired_at: datetime | None = None, one_off_done: bool = False, now: datetime | None = None) -> datetime | None:
    """The next fire time in UTC; None when there is none (a one-off done, a cron that never fires)."""
    now = now or timezone.now()
    if cron_expression:
        return cron_next(cron_expression, after=max(now, scheduled_at - timedelta(seconds=1)), tz=tz)
    if interval_seconds:
        step = timedelta(seconds=interval_seconds)
        first = last_fired_at + step if last_fired_at else scheduled_at
        if first < now:
            first += step * ((now - first) // step + 1)
        return first
    return None if one_off_done else scheduled_at


def next_run(schedule) -> datetime | None:
    task = schedule.periodic_task
    if not schedule.enabled and (task.one_off and schedule.fire_count):
        return None
    return next_run_for(
        scheduled_at=schedule.scheduled_at, cron_expression=schedule.cron_expression, interval_seconds=schedule.interval_seconds,
        tz=schedule.timezone, last_fired_at=schedule.last_fired_at, one_off_done=bool(schedule.fire_count and task.one_off),
    )


def first_fire(schedule, *, now: datetime | None = None) -> datetime | None:
    """The `next_fire_at` a schedule gets when it is created, retimed or resumed (None: paused,
    a one-time that fired, or a cron no date matches)."""
    if not schedule.enabled:
        return None
    now = now or timezone.now()
    task = schedule.periodic_task
    if task.clocked_id:
        return None if schedule.fire_count else schedule.scheduled_at
    return next_run_for(scheduled_at=schedule.scheduled_at, cron_expression=schedule.cron_expression,
                        interval_seconds=schedule.interval_seconds, tz=schedule.timezone, last_fired_at=schedule.last_fired_at, now=now)


@lru_cache(maxsize=4096)
def _cron_next(expression: str, after: datetime, tz: str) -> datetime | None:
    return cron_next(expression, after=after, tz=tz)  # co-due schedules mostly share (expression, due, zone)


def next_fire_after(schedule, due: datetime, now: datetime) -> datetime | None:
    """The due set's step: the fire after the claimed `due` (None for a one-time). Runs missed
    while nothing dispatched (beat down) are fired once, late, not replayed."""
    task = schedule.periodic_task
    if task.clocked_id:
        return None
    after = max(now, due)
    cron = schedule.cron_expression
    if cron:
        return _cron_next(cron, max(after, schedule.scheduled_at - timedelta(seconds=1)), schedule.timezone)
    return next_run_for(scheduled_at=schedule.scheduled_at, cron_expression=None, interval_seconds=schedule.interval_seconds,
                        tz=schedule.timezone, last_fired_at=due, now=after)


def periodic_task_label(*, tenant_name: str, instance_name: str, operation: str, schedule_id) -> str:
    """The PeriodicTask's name as people read it in beat's admin: tenant · object · operation
    (the schedule id's first characters keep two schedules of the same operation apart)."""
    return f"{tenant_name} · {instance_name} · {operation} · {str(schedule_id)[:8]}"[:200]


def apply_timing(task, *, scheduled_at: datetime, cron_expression: str | None, interval_seconds: int | None, tz: str) -> None:
    """Point an (unsaved or saved) PeriodicTask at one timing: crontab in `tz`, an interval from
    `scheduled_at`, or a one-off clocked time; the other schedule kinds are cleared."""
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule

    task.crontab = task.interval = task.clocked = task.solar = None
    task.start_time, task.one_off = None, False
    if cron_expression:
        minute, hour, dom, month, dow = cron_expression.split()
        task.crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone=tz)
        # No start_time: beat would treat the start as a missed run and fire at once; the fire
        # service ignores fires before scheduled_at instead.
    elif interval_seconds:
        task.interval, _ = IntervalSchedule.objects.get_or_create(every=interval_seconds, period=IntervalSchedule.SECONDS)
        task.start_time = scheduled_at  # beat fires at the start, then every interval
    else:
        task.clocked = ClockedSchedule.objects.create(clocked_time=scheduled_at)
        task.one_off = True


def build_periodic_task(*, schedule_id, description: str, scheduled_at: datetime, cron_expression: str | None,
                        interval_seconds: int | None, tz: str, name: str | None = None):
    """Create the display-only PeriodicTask (and its clocked/crontab/interval row) of a new schedule."""
    from django_celery_beat.models import PeriodicTask

    # Display-only (never enabled): the dispatcher fires the schedule from its `next_fire_at`.
    task = PeriodicTask(task=TASK_NAME, kwargs=json.dumps({"schedule_id": str(schedule_id)}), queue="jobs",
                        description=description, enabled=False, name=name or f"deployments.schedule:{schedule_id}")
    apply_timing(task, scheduled_at=scheduled_at, cron_expression=cron_expression, interval_seconds=interval_seconds, tz=tz)
    task.save()
    return task


def upcoming_runs(schedule, *, count: int = 10, now: datetime | None = None) -> list[datetime]:
    """The next `count` fire times of a deployment schedule (UTC), for the admin's preview."""
    from apps.core.cron import cron_runs

    now = now or timezone.now()
    if not schedule.enabled:
        return []
    cron, every = schedule.cron_expression, schedule.interval_seconds
    if cron:
        return cron_runs(cron, after=max(now, schedule.scheduled_at - timedelta(seconds=1)), tz=schedule.timezone, count=count)
    first = next_run(schedule)
    if first is None:
        return []
    if every:
        return [first + timedelta(seconds=every) * i for i in range(count)]
    return [first]
