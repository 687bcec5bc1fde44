"""Import Grafana OnCall's schedules and rotations from its public API export (docs/oncall.md,
"Moving from Grafana OnCall"). Escalation chains are imported by apps/alerts (above this app),
which calls `import_schedules` first for the schedule id mapping.

Mapping: a `rolling_users` or `recurrent_event` shift becomes a rotation layer (daily, weekly,
or custom hours for `hourly`; a duration shorter than the period becomes a restriction window
on the `by_day` weekdays); a `single_event` becomes a calendar shift; an `override` becomes an
override. OnCall levels keep their order (ours start at 1, one layer per level). What cannot be
mapped is reported, never guessed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from . import services
from .choices import Frequency
from .models import Schedule

DAYS = {"MO": "mon", "TU": "tue", "WE": "wed", "TH": "thu", "FR": "fri", "SA": "sat", "SU": "sun"}
PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}


def rows(data: dict, key: str) -> list[dict]:
    """A list from the export, whether saved as a plain list or as the API's paginated page."""
    value = data.get(key) or []
    if isinstance(value, dict):
        value = value.get("results") or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValidationError({key: f'Expected a list of objects under {key!r} (or the API\'s {{"results": [...]}} page).'})
    return value


def user_map(data: dict, tenant_id: int) -> dict[str, int]:
    """OnCall user id → our user id, matched by e-mail, then username, among the tenant's staff."""
    staff = services.tenant_member_ids(
        tenant_id, get_user_model().objects.filter(memberships__organization_id=tenant_id).values_list("pk", flat=True)
    )
    by_key: dict[str, int] = {}
    for pk, username, email in get_user_model().objects.filter(pk__in=staff).values_list("pk", "username", "email"):
        by_key[username.lower()] = pk
        if email:
            by_key[email.lower()] = pk
    out = {}
    for user in rows(data, "users"):
        for key in (user.get("email"), user.get("username")):
            if isinstance(key, str) and key.lower() in by_key:
                out[str(user.get("id"))] = by_key[key.lower()]
                break
    return out


def _start(shift: dict, tz: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(str(shift.get("start", "")).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            {"on_call_shifts": f"Shift {shift.get('id')!r}: start {shift.get('start')!r} is not an ISO date-time."}
        ) from None
    return value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value


def _layer_fields(shift: dict, tz: ZoneInfo, people: list[int], warn) -> dict | None:
    freq = shift.get("frequency") or "weekly"
    interval = max(1, int(shift.get("interval") or 1))
    duration = int(shift.get("duration") or 0)
    start = _start(shift, tz)
    if freq not in PERIOD:
        warn(f"shift {shift.get('id')}: frequency {freq!r} is not supported (daily, weekly, hourly); left out")
        return None
    offset = int(shift.get("start_rotation_from_user_index") or 0) % max(1, len(people))
    fields = {
        "start_date": start.date(),
        "handoff_time": start.time().replace(microsecond=0),
        "member_ids": people[offset:] + people[:offset],
        "interval": interval,
        "restrictions": [],
    }
    if freq == "hourly":
        fields.update(frequency=Frequency.CUSTOM, shift_hours=interval, interval=1)
    else:
        fields["frequency"] = Frequency.DAILY if freq == "daily" else Frequency.WEEKLY
    period = PERIOD[freq] * interval
    by_day = [DAYS[d] for d in shift.get("by_day") or [] if d in DAYS]
    if (duration and duration < period and freq != "hourly") or by_day:
        if duration >= 86400 or not duration:
            if by_day:
                fields["restrictions"] = [{"weekdays": by_day, "start": "00:00", "end": "24:00"}]
            if duration > 86400:
                warn(f"shift {shift.get('id')}: a {duration // 3600} h shift inside a {freq} rotation is kept as whole days")
        else:
            end = start + timedelta(seconds=duration)
            fields["restrictions"] = [
                {
                    "weekdays": by_day or list(DAYS.values()),
                    "start": start.strftime("%H:%M"),
                    "end": "24:00" if end.time() == datetime.min.time() and end.date() > start.date() else end.strftime("%H:%M"),
                }
            ]
    return fields


def import_schedules(data: dict, *, tenant, actor=None) -> tuple[dict[str, int], list[str]]:
    """Create schedules, layers, calendar shifts and overrides from an OnCall export; returns
    (OnCall schedule id → our schedule id, warnings). One transaction; a name that exists is
    skipped with a warning (re-running the import does not duplicate)."""
    warnings: list[str] = []
    users = user_map(data, tenant.pk)
    shifts = {str(s.get("id")): s for s in rows(data, "on_call_shifts")}
    mapping: dict[str, int] = {}
    with transaction.atomic():
        for sched in rows(data, "schedules"):
            name = str(sched.get("name") or sched.get("id"))[:120]
            existing = Schedule.objects.filter(tenant=tenant, name=name).first()
            if existing is not None:
                mapping[str(sched.get("id"))] = existing.pk
                warnings.append(f"schedule {name!r} exists already; left as it is")
                continue
            tz_name = sched.get("time_zone") or "UTC"
            schedule = services.schedule_create(
                actor=actor,
                tenant=tenant,
                name=name,
                timezone=tz_name,
                description=f"Imported from Grafana OnCall ({sched.get('id')}).",
            )
            mapping[str(sched.get("id"))] = schedule.pk
            own = [shifts[str(i)] for i in sched.get("shifts") or [] if str(i) in shifts]
            own += [
                s
                for s in shifts.values()
                if str(s.get("schedule") or s.get("schedule_id") or "") == str(sched.get("id")) and s not in own
            ]
            if sched.get("type") == "ical":
                warnings.append(f"schedule {name!r}: an iCal schedule; import its calendar file with the iCalendar import")
            _import_shifts(schedule, own, users, actor, warnings)
    return mapping, warnings


def _people(shift: dict, users: dict[str, int], warn) -> list[int]:
    groups = shift.get("rolling_users") or [[u] for u in shift.get("users") or []]
    people = []
    for group in groups:
        group = group if isinstance(group, list) else [group]
        known = [users[str(u)] for u in group if str(u) in users]
        if len(group) > 1:
            warn(
                f"shift {shift.get('id')}: a group of {len(group)} people on call together is imported as its first known member"
            )
        if known and known[0] not in people:
            people.append(known[0])
        elif not known:
            warn(f"shift {shift.get('id')}: users {group} are not staff of this tenant (matched by e-mail or username); left out")
    return people


def _import_shifts(schedule: Schedule, shifts: list[dict], users: dict[str, int], actor, warnings: list[str]) -> None:
    level = 0
    calendar = []
    for shift in sorted(shifts, key=lambda s: int(s.get("level") or 0)):
        kind = shift.get("type")
        people = _people(shift, users, warnings.append)
        try:
            shift_tz = ZoneInfo(shift.get("time_zone") or schedule.timezone)
        except (ValueError, KeyError):
            raise ValidationError(
                {"on_call_shifts": f"Shift {shift.get('id')!r}: unknown time zone {shift.get('time_zone')!r}."}
            ) from None
        if kind == "override":
            start = _start(shift, shift_tz).replace(tzinfo=shift_tz)
            for who in people[:1]:
                services.override_create(
                    actor=actor,
                    schedule=schedule,
                    user=get_user_model()(pk=who),
                    starts_at=start,
                    ends_at=start + timedelta(seconds=int(shift.get("duration") or 3600)),
                )
            continue
        if kind == "single_event":
            start = _start(shift, shift_tz).replace(tzinfo=shift_tz)
            calendar += [
                (start, start + timedelta(seconds=int(shift.get("duration") or 3600)), who, str(shift.get("id")))
                for who in people[:1]
            ]
            continue
        if not people:
            warnings.append(f"shift {shift.get('id')} ({shift.get('name')}): nobody to put on call; left out")
            continue
        fields = _layer_fields(shift, shift_tz, people, warnings.append)
        if fields is None:
            continue
        level += 1
        services.layer_create(
            actor=actor,
            schedule=schedule,
            name=str(shift.get("name") or shift.get("id"))[:120],
            level=level,
            timezone=shift.get("time_zone") or "",
            **fields,
        )
    if calendar:
        services.calendar_layer_replace(actor=actor, schedule=schedule, name="Single events", level=level + 1, shifts=calendar)
