"""SLA clocks in business time.

`Calendar` is working hours per weekday in a time zone plus holidays; `add_business_seconds`
and `business_seconds_between` do the arithmetic. `sla_clock(ticket)` is the ONE place that turns
a ticket's clock state (start, business seconds spent paused, policy) into due times; every
service calls it. Pauses today: waiting on the customer, and the time between resolution and
a reopen, and — for tickets linked to an incident (`metadata["incident"]`, written by the
alerts app: `{"labels": {...}, "related": {"type": "app.model", "id": "5"}}`) — the working time
of maintenance windows (apps.maintenance) covering the incident: their overlap with the clock
is added to the paused seconds here, in `sla_clock`. Windows that are active count until their
planned end; a window closed early is re-evaluated by the tickets handler of
`maintenance_window.*` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 366 * 3  # a target longer than three years of business days is a configuration error


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    hours: tuple[tuple[tuple[time, time | None], ...], ...]  # per weekday (Mon=0) intervals; None = 24:00
    holidays: frozenset[date] = frozenset()

    @classmethod
    def always(cls, tz: str = "UTC") -> Calendar:
        return cls(tz=ZoneInfo(tz or "UTC"), hours=tuple(((time(0), None),) for _ in range(7)))

    @classmethod
    def from_model(cls, cal, tenant_tz: str = "UTC") -> Calendar:
        from .models import _parse_hhmm

        hours = []
        for name in DAY_NAMES:
            hours.append(tuple((_parse_hhmm(s), _parse_hhmm(e)) for s, e in (cal.working_hours.get(name) or [])))
        return cls(
            tz=ZoneInfo(cal.timezone or tenant_tz or "UTC"),
            hours=tuple(hours),
            holidays=frozenset(date.fromisoformat(d) for d in cal.holidays),
        )

    def intervals(self, day: date):
        """Working intervals of one local day as aware datetimes."""
        if day in self.holidays:
            return
        for start, end in self.hours[day.weekday()]:
            s = datetime.combine(day, start, tzinfo=self.tz)
            e = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz) if end is None else datetime.combine(day, end, tzinfo=self.tz)
            yield s, e


def add_business_seconds(start: datetime, seconds: float, cal: Calendar) -> datetime:
    """The moment when `seconds` of working time have passed after `start`."""
    remaining = timedelta(seconds=max(0.0, seconds))
    day = start.astimezone(cal.tz).date()
    for _ in range(MAX_DAYS):
        for s, e in cal.intervals(day):
            if e <= start:
                continue
            s = max(s, start)
            if s + remaining <= e:
                return s + remaining
            remaining -= e - s
        day += timedelta(days=1)
    raise ValueError("SLA target does not fit into three years of working time; check the calendar.")


def business_seconds_between(a: datetime, b: datetime, cal: Calendar) -> int:
    """Working seconds in [a, b)."""
    if b <= a:
        return 0
    total = timedelta()
    day = a.astimezone(cal.tz).date()
    last = b.astimezone(cal.tz).date()
    while day <= last:
        for s, e in cal.intervals(day):
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return int(total.total_seconds())


@dataclass(frozen=True)
class SlaTargets:
    policy_id: int | None
    first_response_minutes: int | None
    resolution_minutes: int | None
    at_risk_percent: int
    calendar: Calendar


def sla_targets(tenant, priority: str) -> SlaTargets:
    """The SLA policy of (tenant, priority); else the tenant's `settings["sla"][priority]`
    defaults; else no SLA. Calendar: the policy's, else the tenant's default, else 24×7.
    `tenant` is an Organization or its id; the answer comes from the cached tenant configuration
    (`apps.tickets.config`)."""
    from .config import tenant_config

    return tenant_config(getattr(tenant, "pk", tenant)).sla_targets(priority)


@dataclass(frozen=True)
class SlaClock:
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    warn_at: datetime | None


def sla_clock(ticket, targets: SlaTargets) -> SlaClock:
    """Due times of a ticket from its clock state: start + target + business seconds paused.

    The warning moment is at `at_risk_percent` of the next open target (first response until
    one is recorded, then resolution)."""
    start = ticket.sla_started_at
    if start is None:
        return SlaClock(None, None, None)
    cal = targets.calendar
    paused = (ticket.sla_paused_seconds or 0) + _maintenance_pause(ticket, targets)
    ratio = targets.at_risk_percent / 100

    def due(minutes, share=1.0):
        return None if minutes is None else add_business_seconds(start, minutes * 60 * share + paused, cal)

    fr_due = due(targets.first_response_minutes)
    res_due = due(targets.resolution_minutes)
    if ticket.first_responded_at is None and targets.first_response_minutes is not None:
        warn = due(targets.first_response_minutes, ratio)
    else:
        warn = due(targets.resolution_minutes, ratio)
    return SlaClock(fr_due, res_due, warn)


# -- maintenance windows ------------------------------------------------------------------------
def _maintenance_pause(ticket, targets: SlaTargets) -> int:
    """Maintenance working time up to the (pushed) resolution deadline: windows scheduled before
    the deadline push it; a few rounds settle it (a pushed deadline may reach another window)."""
    if not isinstance(ticket.metadata, dict) or not ticket.metadata.get("incident") or ticket.sla_started_at is None:
        return 0
    longest = max((m for m in (targets.first_response_minutes, targets.resolution_minutes) if m is not None), default=None)
    if longest is None:
        return 0
    base = longest * 60 + (ticket.sla_paused_seconds or 0)
    found = 0
    for _ in range(4):
        horizon = add_business_seconds(ticket.sla_started_at, base + found, targets.calendar)
        again = maintenance_paused_seconds(ticket, targets.calendar, until=horizon)
        if again == found:
            break
        found = again
    return found


MAX_OCCURRENCES = 1000


def _occurrences(window, start: datetime, until: datetime):
    """(start, end) of the window's occurrences overlapping [start, until] (recurring windows
    are walked from `start` minus their duration; at most MAX_OCCURRENCES)."""
    from apps.maintenance.choices import Recurrence

    if window.recurrence == Recurrence.ONE_OFF:
        if window.ends_at and window.ends_at > start and window.starts_at < until:
            yield window.starts_at, window.ends_at
        return
    duration = timedelta(minutes=window.duration_minutes or 0)
    lo = max(start - duration, window.starts_at)
    hi = min(until, window.ends_at) if window.ends_at else until
    if window.recurrence == Recurrence.CRON:
        from croniter import croniter

        itr = croniter(window.cron, lo.astimezone(window.tz) - timedelta(seconds=1))
        starts = (itr.get_next(datetime) for _ in range(MAX_OCCURRENCES))
    else:
        naive = window.starts_at.astimezone(window.tz).replace(tzinfo=None)
        starts = (d.replace(tzinfo=window.tz) for d in window._rule(naive).between(
            lo.astimezone(window.tz).replace(tzinfo=None), hi.astimezone(window.tz).replace(tzinfo=None), inc=True)[:MAX_OCCURRENCES])
    for s in starts:
        if s > hi:
            break
        if s >= window.starts_at and s + duration > start:
            yield s, s + duration


def _covers_incident(window, incident: dict) -> bool:
    from apps.maintenance.choices import WindowScope

    if window.scope == WindowScope.TENANT:
        return True
    related = incident.get("related") or {}
    if related.get("type") and str(related.get("id", "")).isdigit():
        app_label, _, model = str(related["type"]).partition(".")
        for item in window.objects_in_scope.all():
            ct = item.content_type
            if (ct.app_label, ct.model, item.object_id) == (app_label, model, int(related["id"])):
                return True
    labels = incident.get("labels") or {}
    return bool(window.label_matchers) and all(str(labels.get(k)) == v for k, v in window.label_matchers.items())


def maintenance_paused_seconds(ticket, cal: Calendar, *, until: datetime) -> int:
    """Working seconds of maintenance windows covering the ticket's incident between the clock's
    start and `until` (whole occurrences that begin before `until`). 0 without an incident."""
    incident = (ticket.metadata or {}).get("incident") if isinstance(ticket.metadata, dict) else None
    start = ticket.sla_started_at
    if not incident or start is None or not ticket.tenant_id:
        return 0
    from apps.maintenance.models import MaintenanceWindow

    windows = (
        MaintenanceWindow.objects.filter(tenant_id=ticket.tenant_id, enabled=True, starts_at__lte=until)
        .exclude(ends_at__lte=start).prefetch_related("objects_in_scope__content_type")
    )
    intervals = []
    for window in windows:
        if _covers_incident(window, incident):
            intervals.extend(_occurrences(window, start, until))
    total, edge = 0, start
    for s, e in sorted(intervals):
        s = max(s, edge)
        if e > s:
            total += business_seconds_between(s, e, cal)
            edge = e
    return total
