"""iCalendar (RFC 5545) in and out: an existing team calendar becomes shifts; a schedule or a
person's on-call time becomes a feed. Input is bounded before any expansion: the file size,
the number of VEVENTs, the occurrences expanded (over ICAL_HORIZON_DAYS from now, so a
recurrence that never ends stops there) and the wall time spent."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_BYTES = 2 * 1024 * 1024


def _limits() -> tuple[int, int]:
    return getattr(settings, "ONCALL_ICAL_MAX_EVENTS", 5000), getattr(settings, "ONCALL_ICAL_HORIZON_DAYS", 90)


def _as_utc(value, tz=UTC) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(UTC)
    raise ValueError("not a date")


def _who(event, members: dict[str, int]) -> int | None:
    attendees = event.get("ATTENDEE")
    if attendees is not None:
        for attendee in attendees if isinstance(attendees, list) else [attendees]:
            email = str(attendee).removeprefix("mailto:").removeprefix("MAILTO:").strip().lower()
            if email in members:
                return members[email]
    summary = str(event.get("SUMMARY", "")).strip().lower()
    if summary in members:
        return members[summary]
    # "On call: alice" / "alice (primary)": the first word that names a member
    for word in summary.replace(":", " ").replace("(", " ").replace(")", " ").split():
        if word in members:
            return members[word]
    return None


_PERIOD = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 604800,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}


def _check_recurrences(calendar, end: datetime, limit: int) -> None:
    """Refuse, before expanding anything, a rule whose occurrences from its DTSTART up to the
    horizon would number more than `limit` (dateutil walks them all, even those before "now")."""
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        if rules is None:
            continue
        try:
            dtstart = _as_utc(event["DTSTART"].dt)
        except (KeyError, ValueError, AttributeError):
            raise ValidationError({"file": "A recurring event has no valid DTSTART."}) from None
        for rule in rules if isinstance(rules, list) else [rules]:
            freq = (rule.get("FREQ") or ["DAILY"])[0]
            interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
            per_period = 1
            for part in ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH"):
                if rule.get(part):
                    per_period *= len(rule[part])
            steps = max(0.0, (end - dtstart).total_seconds()) / (_PERIOD.get(str(freq).upper(), 86400) * interval) * per_period
            if steps > limit:
                raise ValidationError(
                    {
                        "file": (
                            f"The event {str(event.get('SUMMARY', ''))[:60]!r} recurs too often ({str(freq).lower()}, about {int(steps):,} "
                            f"times up to the import horizon); on-call shifts are hours or days long — fix the recurrence rule."
                        )
                    }
                )


def parse_shifts(
    data: bytes, *, members: dict[str, int], start: datetime
) -> tuple[list[tuple[datetime, datetime, int, str]], list[str]]:
    """Shifts (start, end, user id, uid) of the events from `start` to the horizon, and the
    summaries that named nobody. A 400 (ValidationError) for a file that is not iCalendar, too
    large, or expands to more than ICAL_MAX_EVENTS occurrences."""
    import icalendar
    import recurring_ical_events

    max_events, horizon_days = _limits()
    if not data:
        raise ValidationError({"file": "The file is empty; upload an .ics calendar."})
    if len(data) > MAX_BYTES:
        raise ValidationError({"file": f"The calendar is larger than {MAX_BYTES // 1024 // 1024} MB; export a shorter period."})
    if b"\x00" in data:
        raise ValidationError({"file": "The file holds NUL bytes; it is not an iCalendar text file."})
    if data.count(b"BEGIN:VEVENT") > max_events:
        raise ValidationError(
            {"file": f"The calendar holds more than {max_events} events; export the on-call events of the next months only."}
        )
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValidationError({"file": f"Not an iCalendar (RFC 5545) file: {str(exc)[:200]}"}) from None
    end = start + timedelta(days=horizon_days)
    _check_recurrences(calendar, end, max_events * 20)
    shifts: list[tuple[datetime, datetime, int, str]] = []
    skipped: list[str] = []
    deadline = time.monotonic() + 5
    try:
        occurrences = recurring_ical_events.of(calendar, components=["VEVENT"]).after(start)
        for n, event in enumerate(occurrences):
            if n >= max_events:
                raise ValidationError(
                    {
                        "file": (
                            f"The calendar expands to more than {max_events} events within {horizon_days} days "
                            "(a recurrence that repeats too often?); import a calendar with fewer events."
                        )
                    }
                )
            if time.monotonic() > deadline:
                raise ValidationError({"file": "The calendar takes too long to expand; simplify its recurrences."})
            s = _as_utc(event["DTSTART"].dt)
            if s >= end:
                break
            e = (
                _as_utc(event["DTEND"].dt)
                if event.get("DTEND") is not None
                else s + (event["DURATION"].dt if event.get("DURATION") else timedelta(days=1))
            )
            if e <= s:
                continue
            who = _who(event, members)
            if who is None:
                summary = str(event.get("SUMMARY", ""))[:120]
                if summary not in skipped and len(skipped) < 50:
                    skipped.append(summary)
                continue
            shifts.append((s, min(e, end), who, str(event.get("UID", ""))))
    except ValidationError:
        raise
    except Exception as exc:  # any library error on bad input is the file's fault: a 400
        raise ValidationError({"file": f"The calendar could not be expanded: {type(exc).__name__}: {str(exc)[:200]}"}) from None
    return shifts, skipped


def render_feed(entries, *, name: str) -> bytes:
    """A VCALENDAR of on-call slices: entries are (schedule, engine.Slice)."""
    import icalendar
    from django.contrib.auth import get_user_model

    names = dict(get_user_model().objects.filter(pk__in={p.user_id for _, p in entries}).values_list("pk", "username"))
    cal = icalendar.Calendar()
    cal.add("prodid", "-//opsportal//oncall//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    for schedule, piece in entries:
        event = icalendar.Event()
        event.add("uid", f"oncall-{schedule.pk}-{piece.user_id}-{int(piece.start.timestamp())}@opsportal")
        event.add("summary", f"On call: {names.get(piece.user_id, piece.user_id)} ({schedule.name})")
        event.add("dtstart", piece.start)
        event.add("dtend", piece.end)
        event.add("dtstamp", piece.start)
        cal.add_component(event)
    return cal.to_ical()
