"""Reads of the on-call app: load schedules as engine specs (a few queries for any number of
schedules) and answer "who is on call" and "the final schedule" from them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.utils import timezone

from . import engine
from .choices import LayerKind
from .models import Layer, Override, Schedule, Shift, parse_restrictions


@lru_cache(maxsize=512)
def _tz(name: str) -> ZoneInfo:
    return ZoneInfo(name or "UTC")


def _spec(row: dict, schedule_tz: str, shifts) -> engine.LayerSpec:
    if row["kind"] == LayerKind.CALENDAR:
        return engine.LayerSpec.calendar(id=row["id"], level=row["level"], name=row["name"], shifts=shifts)
    restrictions = tuple(parse_restrictions(row["restrictions"])) if row["restrictions"] else ()
    return engine.LayerSpec(
        id=row["id"],
        level=row["level"],
        name=row["name"],
        tz=_tz(row["timezone"] or schedule_tz),
        epoch=datetime.combine(row["start_date"], row["handoff_time"]),
        length=engine.rotation_length(row["frequency"], row["interval"], row["shift_hours"]),
        members=tuple(row["member_ids"] or ()),
        restrictions=restrictions,
    )


_LAYER_FIELDS = (
    "id",
    "schedule_id",
    "name",
    "level",
    "kind",
    "frequency",
    "interval",
    "shift_hours",
    "start_date",
    "handoff_time",
    "timezone",
    "member_ids",
    "restrictions",
)


def load(
    schedule_ids: list[int], start: datetime, end: datetime
) -> dict[int, tuple[list[engine.LayerSpec], list[engine.Interval]]]:
    """Layers and overrides (and calendar shifts) touching [start, end) of these schedules, as
    engine input: four queries whatever the number of schedules."""
    zones = dict(Schedule.objects.filter(pk__in=schedule_ids).values_list("pk", "timezone"))
    rows = list(Layer.objects.filter(schedule_id__in=zones).values(*_LAYER_FIELDS))
    calendar_ids = [r["id"] for r in rows if r["kind"] == LayerKind.CALENDAR]
    shifts: dict[int, list] = defaultdict(list)
    if calendar_ids:
        for layer_id, s, e, u in Shift.objects.filter(
            layer_id__in=calendar_ids, ends_at__gt=start, starts_at__lt=end
        ).values_list("layer_id", "starts_at", "ends_at", "user_id"):
            shifts[layer_id].append((s, e, u))
    out: dict[int, tuple[list, list]] = {pk: ([], []) for pk in zones}
    for row in rows:
        out[row["schedule_id"]][0].append(_spec(row, zones[row["schedule_id"]], shifts.get(row["id"], ())))
    for sid, s, e, u in Override.objects.filter(schedule_id__in=zones, ends_at__gt=start, starts_at__lt=end).values_list(
        "schedule_id", "starts_at", "ends_at", "user_id"
    ):
        out[sid][1].append((s, e, u))
    return out


def oncall_now(schedule_ids: list[int], *, at: datetime | None = None) -> dict[int, engine.Answer]:
    """Who is on call at `at` (default now) for each schedule: one pass over loaded specs."""
    at = at or timezone.now()
    loaded = load(schedule_ids, at, at + timedelta(microseconds=1))
    return {sid: engine.oncall_at(layers, overrides, at) for sid, (layers, overrides) in loaded.items()}


def final_schedule(schedule_id: int, *, start: datetime | None = None, days: float = 14) -> list[engine.Slice]:
    """The final schedule of one schedule over `days` from `start` (default now)."""
    start = start or timezone.now()
    end = start + timedelta(days=days)
    layers, overrides = load([schedule_id], start, end).get(schedule_id, ([], []))
    return engine.final_schedule(layers, overrides, start, end)
