"""Periodic schedules defined in code, synced to django-celery-beat by `setup_periodic_tasks`.

Each app lists its schedules in `<app>/schedules.py` as `SCHEDULES = [Schedule(...)]`. The sync
creates or updates the PeriodicTask rows (so the admin shows and can pause/edit them) without
overwriting an `enabled=False` an operator set.

A high-frequency dispatcher sets `expire_seconds`: after a worker outage its backlog of stale
ticks is dropped instead of run one after another (docs/monitoring.md, "Dispatcher ticks").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int | None = None
    crontab: str | None = None  # "m h dom mon dow"
    timezone: str = "UTC"
    queue: str | None = None
    kwargs: dict = field(default_factory=dict)
    description: str = ""
    # A tick not started within this many seconds of being sent is dropped by the worker. Only for
    # a task that does whatever is due whenever it runs (a dispatcher): the next tick loses nothing.
    expire_seconds: int | None = None


def collect() -> list[Schedule]:
    import importlib
    import importlib.util

    from django.apps import apps

    found: list[Schedule] = []
    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.schedules") is None:
            continue
        module = importlib.import_module(f"{config.name}.schedules")
        found.extend(getattr(module, "SCHEDULES", []))
    return found


def sync(schedules: list[Schedule] | None = None) -> tuple[int, int]:
    """Create or update PeriodicTask rows for every schedule; returns (created, updated)."""
    import json

    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = updated = 0
    for spec in schedules if schedules is not None else collect():
        values: dict = {
            "task": spec.task,
            "kwargs": json.dumps(spec.kwargs),
            "queue": spec.queue,
            "description": spec.description,
            "interval": None,
            "crontab": None,
            "expire_seconds": spec.expire_seconds,
        }
        if spec.expire_seconds is not None and spec.every_seconds and spec.expire_seconds < spec.every_seconds:
            raise ValueError(f"schedule {spec.name}: expire_seconds is shorter than its interval (every tick would be dropped)")
        if spec.every_seconds:
            values["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
        elif spec.crontab:
            minute, hour, dom, month, dow = spec.crontab.split()
            values["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow,
                timezone=spec.timezone,
            )
        else:
            raise ValueError(f"schedule {spec.name} needs every_seconds or crontab")
        _, was_created = PeriodicTask.objects.update_or_create(name=spec.name, defaults=values)
        created += was_created
        updated += not was_created
    return created, updated
