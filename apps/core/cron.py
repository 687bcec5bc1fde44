"""Cron expressions, read one way by every schedule (job and deployment schedules): validation —
a "never fires" expression such as "0 0 31 2 *" included — and fire times in a time zone.

Daylight-saving rule (Vixie cron's): an expression with a fixed hour fires once per local
wall-clock time — in the autumn's repeated hour only at the first occurrence, in the spring gap
once at the shifted time (02:30 that does not exist → 03:00). An expression with hour "*" runs by
elapsed time and fires in both occurrences of the repeated hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from django.core.exceptions import ValidationError

UTC = ZoneInfo("UTC")
FORMAT_HELP = '5 fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * 0"'


def cron_problem(expression: str) -> str | None:
    """Why `expression` cannot be a schedule's timing (None when it can)."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return f'"{expression}" is not a valid cron expression ({FORMAT_HELP}).'
    _, _, dom, _, dow = expression.split()
    start = datetime(2000, 1, 1, tzinfo=UTC)  # a leap year: "29 2" fires, "30 2" / "31 4" never do
    try:
        croniter(expression, start).get_next(datetime)
        if dom != "*" and dow != "*":
            # celery-beat's crontab needs both day fields to match (croniter: either)
            croniter(expression, start, day_or=False).get_next(datetime)
    except CroniterBadDateError:
        return (f'"{expression}" never fires: no date matches its day-of-month, month and day-of-week '
                "(e.g. February has no 30th or 31st).")
    return None


def validate_cron(expression: str, *, field: str) -> None:
    """Raise a ValidationError on `field` when `expression` is malformed or never fires."""
    problem = cron_problem(expression)
    if problem:
        raise ValidationError({field: problem})


def _by_elapsed_time(expression: str) -> bool:
    return expression.split()[1] == "*"


def _is_repeat(moment: datetime) -> bool:
    """`moment` (zone-aware, local) is the second occurrence of an ambiguous wall time."""
    if not moment.fold:
        return False
    first = moment.replace(fold=0)
    return first.utcoffset() != moment.utcoffset()


def cron_runs(expression: str, *, after: datetime, tz: str, count: int) -> list[datetime]:
    """The next `count` fire times strictly after `after` (in `tz`'s zone, zone-aware); [] when
    the expression is invalid or never fires (a row saved before validation existed)."""
    if cron_problem(expression):
        return []
    zone = ZoneInfo(tz)
    it = croniter(expression, after.astimezone(zone), day_or=not _both_days(expression))
    elapsed = _by_elapsed_time(expression)
    out: list[datetime] = []
    while len(out) < count:
        nxt = it.get_next(datetime)
        if elapsed or not _is_repeat(nxt):
            out.append(nxt)
    return out


def cron_next(expression: str, *, after: datetime, tz: str) -> datetime | None:
    """The next fire time after `after`, in UTC (None: never)."""
    runs = cron_runs(expression, after=after, tz=tz, count=1)
    return runs[0].astimezone(UTC) if runs else None


def cron_prev(expression: str, *, before: datetime, tz: str) -> datetime | None:
    """The last fire time at or before `before` (zone-aware; None: never or invalid)."""
    if cron_problem(expression):
        return None
    zone = ZoneInfo(tz)
    it = croniter(expression, (before + timedelta(seconds=1)).astimezone(zone), day_or=not _both_days(expression))
    elapsed = _by_elapsed_time(expression)
    while True:
        prev = it.get_prev(datetime)
        if elapsed or not _is_repeat(prev):
            return prev


def _both_days(expression: str) -> bool:
    _, _, dom, _, dow = expression.split()
    return dom != "*" and dow != "*"
