"""Reads of the on-call app: load schedules as engine specs (a few queries for any number of
schedules) and answer "who is on call" and "the final schedule" from them."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
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


# Compiled rotation layers per set of schedules, kept while the rows are unchanged: a stamp
# (count and newest updated_at of the schedules and their layers, two index reads) decides.
_CACHE: OrderedDict[tuple, tuple[tuple, dict]] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()  # gunicorn threads share the cache


# PostgreSQL: the id lists go as one array parameter (`= ANY(%s)`), which costs nothing to
# build; Django's `__in` prepares every id and takes ~15 ms for 1,000. Other databases use the
# ORM (portable path, same answers; tests/oncall/test_selectors.py runs both).
USE_PG_FAST_PATH = True


def _fast() -> bool:
    from django.db import connection

    return USE_PG_FAST_PATH and connection.vendor == "postgresql"


def _stamp(ids: list[int]) -> tuple:
    if _fast():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), max(updated_at) FROM oncall_schedule WHERE id = ANY(%s) "
                "UNION ALL SELECT count(*), max(updated_at) FROM oncall_layer WHERE schedule_id = ANY(%s)",
                [ids, ids],
            )
            return tuple(cursor.fetchall())
    from django.db.models import Count, Max

    s = Schedule.objects.filter(pk__in=ids).aggregate(n=Count("pk"), t=Max("updated_at"))
    layer = Layer.objects.filter(schedule_id__in=ids).aggregate(n=Count("pk"), t=Max("updated_at"))
    return ((s["n"], s["t"]), (layer["n"], layer["t"]))


def _overrides(ids: list[int], start: datetime, end: datetime):
    if _fast():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT schedule_id, starts_at, ends_at, user_id FROM oncall_override "
                "WHERE schedule_id = ANY(%s) AND ends_at > %s AND starts_at < %s",
                [ids, start, end],
            )
            return cursor.fetchall()
    return Override.objects.filter(schedule_id__in=ids, ends_at__gt=start, starts_at__lt=end).values_list(
        "schedule_id", "starts_at", "ends_at", "user_id"
    )


def _rotations(ids: list[int]) -> dict[int, tuple[str, list[dict], list[engine.LayerSpec]]]:
    """Per schedule: its time zone, its calendar layers' rows, its compiled rotation layers
    (highest level first) — from the cache when the stamp still matches."""
    key = tuple(sorted(set(ids)))
    stamp = _stamp(list(key))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            _CACHE.move_to_end(key)
            return hit[1]
    zones = dict(Schedule.objects.filter(pk__in=key).values_list("pk", "timezone"))  # only on a cache miss
    out: dict[int, tuple[str, list, list]] = {pk: (tz, [], []) for pk, tz in zones.items()}
    for row in Layer.objects.filter(schedule_id__in=key).values(*_LAYER_FIELDS):
        entry = out[row["schedule_id"]]
        if row["kind"] == LayerKind.CALENDAR:
            entry[1].append(row)
        else:
            entry[2].append(_spec(row, entry[0], ()))
    for entry in out.values():
        entry[2].sort(key=lambda spec: -spec.level)
    with _LOCK:
        _CACHE[key] = (stamp, out)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def load(
    schedule_ids: list[int], start: datetime, end: datetime
) -> dict[int, tuple[list[engine.LayerSpec], list[engine.Interval]]]:
    """Layers (highest level first) and overrides touching [start, end) of these schedules, as
    engine input: compiled rotations from the cache, calendar shifts and overrides fresh."""
    compiled = _rotations(schedule_ids)
    calendar_ids = [row["id"] for _, rows, _ in compiled.values() for row in rows]
    shifts: dict[int, list] = defaultdict(list)
    if calendar_ids:
        for layer_id, s, e, u in Shift.objects.filter(
            layer_id__in=calendar_ids, ends_at__gt=start, starts_at__lt=end
        ).values_list("layer_id", "starts_at", "ends_at", "user_id"):
            shifts[layer_id].append((s, e, u))
    out: dict[int, tuple[list, list]] = {}
    for sid, (tz, rows, specs) in compiled.items():
        if rows:
            specs = sorted([*specs, *(_spec(row, tz, shifts.get(row["id"], ())) for row in rows)], key=lambda spec: -spec.level)
        out[sid] = (specs, [])
    for sid, s, e, u in _overrides(list(compiled), start, end):
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
