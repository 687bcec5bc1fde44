"""SLA clocks in business time.

`Calendar` is working hours per weekday in a time zone plus holidays; `add_business_seconds`
and `business_seconds_between` do the arithmetic. `sla_clock(ticket)` is the ONE place that turns
a ticket's clock state (start, business seconds spent paused, policy) into due times; every
service calls it. Pauses today: waiting on the customer, and the time between resolution and
a reopen. Maintenance windows (apps/maintenance, a later issue) will pause clocks by adding
their overlap to `paused_seconds` in `sla_clock` — that is the seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .choices import TicketPriority

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
    policy: object | None
    first_response_minutes: int | None
    resolution_minutes: int | None
    at_risk_percent: int
    calendar: Calendar


def sla_targets(tenant, priority: str) -> SlaTargets:
    """The SLA policy of (tenant, priority); else the tenant's `settings["sla"][priority]`
    defaults; else no SLA. Calendar: the policy's, else the tenant's default, else 24×7."""
    from .models import BusinessCalendar, SlaPolicy

    tz = getattr(tenant, "timezone", "UTC") or "UTC"
    policy = SlaPolicy.objects.filter(tenant=tenant, priority=priority, is_active=True).select_related("calendar").first()
    cal_row = policy.calendar if policy and policy.calendar_id else BusinessCalendar.objects.filter(tenant=tenant, is_default=True).first()
    calendar = Calendar.from_model(cal_row, tz) if cal_row else Calendar.always(tz)
    if policy:
        return SlaTargets(policy, policy.first_response_minutes, policy.resolution_minutes, policy.at_risk_percent, calendar)
    defaults = ((getattr(tenant, "settings", None) or {}).get("sla") or {}).get(str(TicketPriority(priority).value)) or {}
    try:
        fr = int(defaults["first_response_minutes"]) if "first_response_minutes" in defaults else None
        res = int(defaults["resolution_minutes"]) if "resolution_minutes" in defaults else None
        pct = int(defaults.get("at_risk_percent", 80))
    except (TypeError, ValueError):
        fr = res = None
        pct = 80
    return SlaTargets(None, fr, res, pct, calendar)


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
    paused = ticket.sla_paused_seconds or 0  # the seam: maintenance-window overlap adds here
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
