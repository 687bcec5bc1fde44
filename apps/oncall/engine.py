"""The on-call arithmetic, in plain Python (no ORM): who a layer puts on call at an instant, a
layer's shifts over a window, and the final schedule (overrides over higher layers over lower
ones, gaps where nobody is on call).

Rotations count in local wall-clock time: shift k starts at `epoch + k × length` on the clock of
the layer's time zone, so a 09:00 handoff stays at 09:00 across a DST change (that day's shift
is 23 or 25 hours long). Restrictions are local windows too.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime, int | None]


@dataclass(frozen=True)
class LayerSpec:
    """One layer, ready to answer: rotation parameters or fixed (calendar) shifts."""

    id: int
    level: int
    tz: ZoneInfo
    epoch: datetime  # naive local start of shift 0
    length: timedelta  # wall-clock length of one shift
    members: tuple[int, ...] = ()
    restrictions: tuple[tuple[frozenset[int], int, int], ...] = ()
    shifts: tuple[Interval, ...] | None = None  # calendar layers: sorted (start, end, user)
    name: str = ""
    _starts: tuple[datetime, ...] = field(default=(), compare=False)

    @classmethod
    def calendar(cls, *, id: int, level: int, shifts, name: str = "") -> LayerSpec:
        rows = tuple(sorted(shifts, key=lambda s: s[0]))
        return cls(
            id=id,
            level=level,
            tz=ZoneInfo("UTC"),
            epoch=datetime.min,
            length=timedelta(days=1),
            shifts=rows,
            name=name,
            _starts=tuple(r[0] for r in rows),
        )


def rotation_length(frequency: str, interval: int, shift_hours: int | None) -> timedelta:
    if frequency == "custom":
        return timedelta(hours=shift_hours or 24)
    return timedelta(days=(7 if frequency == "weekly" else 1) * max(1, interval))


def _allowed(spec: LayerSpec, local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for days, start, end in spec.restrictions:
        if start < end:
            if weekday in days and start <= minute < end:
                return True
        elif (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end):
            return True
    return False


def layer_user_at(spec: LayerSpec, at: datetime) -> int | None:
    """The member a layer puts on call at the aware instant `at` (None: nobody)."""
    if spec.shifts is not None:
        i = bisect_right(spec._starts, at)
        for start, end, user in reversed(spec.shifts[max(0, i - 8) : i]):
            if start <= at < end:
                return user
        return None
    local = at.astimezone(spec.tz).replace(tzinfo=None)
    if local < spec.epoch or not spec.members:
        return None
    if spec.restrictions and not _allowed(spec, local):
        return None
    k = (local - spec.epoch) // spec.length
    return spec.members[k % len(spec.members)]


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


def _restriction_windows(spec: LayerSpec, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    first = start.astimezone(spec.tz).date() - timedelta(days=1)
    last = end.astimezone(spec.tz).date() + timedelta(days=1)
    windows = []
    day = first
    while day <= last:
        for days, lo, hi in spec.restrictions:
            if day.weekday() not in days:
                continue
            s = datetime.combine(day, time()) + timedelta(minutes=lo)
            e = datetime.combine(day, time()) + timedelta(minutes=hi)
            if hi <= lo:
                e += timedelta(days=1)
            windows.append((_aware(s, spec.tz), _aware(e, spec.tz)))
        day += timedelta(days=1)
    windows.sort()
    merged: list[list[datetime]] = []
    for s, e in windows:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def layer_intervals(spec: LayerSpec, start: datetime, end: datetime) -> list[Interval]:
    """The layer's shifts within [start, end), clipped, restrictions applied, in order."""
    if spec.shifts is not None:
        return [(max(s, start), min(e, end), u) for s, e, u in spec.shifts if e > start and s < end]
    if not spec.members:
        return []
    local_start = start.astimezone(spec.tz).replace(tzinfo=None)
    k = max(0, (local_start - spec.epoch) // spec.length - 1)
    out: list[Interval] = []
    n = len(spec.members)
    while True:
        s = _aware(spec.epoch + k * spec.length, spec.tz)
        if s >= end:
            break
        e = _aware(spec.epoch + (k + 1) * spec.length, spec.tz)
        if e > start:
            out.append((max(s, start), min(e, end), spec.members[k % n]))
        k += 1
    if spec.restrictions:
        out = _intersect(out, _restriction_windows(spec, start, end))
    return out


def _intersect(shifts: list[Interval], windows: list[tuple[datetime, datetime]]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(shifts) and j < len(windows):
        s = max(shifts[i][0], windows[j][0])
        e = min(shifts[i][1], windows[j][1])
        if s < e:
            out.append((s, e, shifts[i][2]))
        if shifts[i][1] < windows[j][1]:
            i += 1
        else:
            j += 1
    return out


@dataclass(frozen=True)
class Slice:
    """A piece of the final schedule: who (None: a gap) and from where."""

    start: datetime
    end: datetime
    user_id: int | None
    source: str  # "override", "layer" or "gap"
    layer_id: int | None = None


def final_schedule(layers: list[LayerSpec], overrides: list[Interval], start: datetime, end: datetime) -> list[Slice]:
    """Overrides over the highest layer that has someone over the lower ones; gaps as slices
    with user None. Adjacent slices of the same person and source are merged."""
    sources: list[tuple[str, int | None, list[Interval]]] = [
        ("layer", spec.id, layer_intervals(spec, start, end)) for spec in sorted(layers, key=lambda s: s.level)
    ]
    sources.append(("override", None, sorted((max(s, start), min(e, end), u) for s, e, u in overrides if e > start and s < end)))
    bounds = {start, end}
    for _, _, rows in sources:
        for s, e, _ in rows:
            bounds.add(s)
            bounds.add(e)
    points = sorted(b for b in bounds if start <= b <= end)
    pointers = [0] * len(sources)
    out: list[Slice] = []
    for a, b in zip(points, points[1:], strict=False):
        winner = None
        for idx in range(len(sources) - 1, -1, -1):
            kind, layer_id, rows = sources[idx]
            p = pointers[idx]
            while p < len(rows) and rows[p][1] <= a:
                p += 1
            pointers[idx] = p
            # calendar shifts may overlap: look at the few rows that start at or before `a`
            q = p
            while q < len(rows) and rows[q][0] <= a:
                if rows[q][1] > a:
                    winner = Slice(a, b, rows[q][2], kind, layer_id)
                    break
                q += 1
            if winner:
                break
        winner = winner or Slice(a, b, None, "gap")
        last = out[-1] if out else None
        if (
            last
            and last.user_id == winner.user_id
            and last.source == winner.source
            and last.layer_id == winner.layer_id
            and last.end == a
        ):
            out[-1] = Slice(last.start, b, last.user_id, last.source, last.layer_id)
        else:
            out.append(winner)
    return out


@dataclass(frozen=True)
class Answer:
    """Who is on call at an instant, where that comes from, and the next layer's person."""

    user_id: int | None
    source: str
    layer_id: int | None = None
    next_user_id: int | None = None


def oncall_at(layers: list[LayerSpec], overrides: list[Interval], at: datetime) -> Answer:
    """One instant, without building a timeline: the covering override, else the highest layer
    with someone. `next_user_id`: the person of the next layer down (the backup)."""
    found: list[tuple[int | None, int]] = []
    if any(a.level < b.level for a, b in zip(layers, layers[1:], strict=False)):
        layers = sorted(layers, key=lambda s: -s.level)  # callers usually pass highest first
    for spec in layers:
        user = layer_user_at(spec, at)
        if user is not None:
            found.append((user, spec.id))
            if len(found) == 2:
                break
    for s, e, user in overrides:
        if s <= at < e:
            return Answer(user, "override", None, found[0][0] if found else None)
    if not found:
        return Answer(None, "gap")
    return Answer(found[0][0], "layer", found[0][1], found[1][0] if len(found) > 1 else None)


def gaps(slices: list[Slice]) -> list[Slice]:
    return [s for s in slices if s.user_id is None]


def day_start(d: date, tz: ZoneInfo) -> datetime:
    return _aware(datetime.combine(d, time()), tz)
