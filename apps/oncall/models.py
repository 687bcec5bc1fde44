"""On-call schedules (docs/oncall.md): a schedule per tenant with layers (a rotation of members
or imported calendar shifts; a higher level overrides a lower one), overrides (someone covers a
period) and secret iCalendar feed tokens (stored hashed, revocable)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES
from apps.core.models import TenantOwnedModel

from .choices import Frequency, LayerKind

# "alerts.manage": the roles that manage escalation policies manage schedules; all staff read.
MANAGE = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def validate_tz(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.") from None


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def parse_restrictions(value) -> list[tuple[frozenset[int], int, int]]:
    """Check restriction windows and return them as (weekday numbers, start minute, end minute).

    Shape: `[{"weekdays": ["mon", …], "start": "09:00", "end": "17:00"}]`; an end at or before
    the start crosses midnight into the next day. An empty list means "always"."""
    if value in (None, []):
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise ValidationError(
            {"restrictions": 'Give a list (at most 50) of {"weekdays": ["mon", …], "start": "09:00", "end": "17:00"}.'}
        )
    parsed = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"weekdays", "start", "end"}:
            raise ValidationError({"restrictions": f"[{i}]: use the keys weekdays, start and end."})
        days = item.get("weekdays", list(WEEKDAYS))
        if not isinstance(days, list) or any(d not in WEEKDAYS for d in days):
            raise ValidationError({"restrictions": f"[{i}].weekdays: use names from {', '.join(WEEKDAYS)}."})
        start, end = item.get("start", "00:00"), item.get("end", "24:00")
        if not all(isinstance(x, str) and _HHMM.match(x) for x in (start, end)):
            raise ValidationError({"restrictions": f"[{i}]: start and end are HH:MM (00:00–24:00)."})
        if minutes(start) == minutes(end) % 1440 and minutes(end) != 1440:
            raise ValidationError(
                {"restrictions": f"[{i}]: the window {start}–{end} is empty; make the end differ from the start."}
            )
        parsed.append((frozenset(WEEKDAYS.index(d) for d in days), minutes(start), minutes(end)))
    if not any(days for days, _, _ in parsed):
        raise ValidationError(
            {
                "restrictions": "These restrictions leave the whole week empty: nobody would ever be on call in this layer. Name at least one weekday."
            }
        )
    return parsed


class Schedule(TenantOwnedModel):
    """A tenant's on-call schedule: layers, overrides, owners (told about gaps) and the state of
    the periodic gap and shift-change checks."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_tz])
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="oncall_owned_schedules")
    notify_shifts = models.BooleanField(default=True, help_text="Tell the person on call when their shift starts and ends.")
    # State of the periodic checks (not configuration).
    gap_start = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="First gap within the next 7 days, as last checked."
    )
    shifts_notified_until = models.DateTimeField(null=True, blank=True, editable=False)

    PORTAL_ROLE_ACTIONS = MANAGE

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="oncall_schedule_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class Layer(TenantOwnedModel):
    """One layer of a schedule. A rotation hands over from member to member every day, week or
    custom number of hours at `handoff_time` local time in `timezone` (wall clock: across a DST
    change the handoff stays at that local time), counted from `start_date`; restrictions limit
    when the layer has anyone at all. A calendar layer holds imported shifts instead."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=120)
    level = models.PositiveSmallIntegerField(default=1, help_text="Higher levels override lower ones.")
    kind = models.CharField(max_length=10, choices=LayerKind.choices, default=LayerKind.ROTATION)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.WEEKLY)
    interval = models.PositiveSmallIntegerField(default=1, help_text="Every N days/weeks (daily, weekly).")
    shift_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Shift length in hours (custom).")
    start_date = models.DateField(help_text="The first shift starts on this day at the handoff time.")
    handoff_time = models.TimeField(default="09:00")
    timezone = models.CharField(
        max_length=64, blank=True, default="", validators=[validate_tz], help_text="Empty: the schedule's."
    )
    member_ids = models.JSONField(default=list, blank=True, help_text="User ids in rotation order.")
    restrictions = models.JSONField(
        default=list,
        blank=True,
        help_text='e.g. [{"weekdays": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "17:00"}]',
    )

    PORTAL_ROLE_ACTIONS = MANAGE

    class Meta:
        ordering = ["schedule", "-level"]
        constraints = [models.UniqueConstraint(fields=["schedule", "level"], name="oncall_layer_level_per_schedule")]

    def __str__(self) -> str:
        return f"{self.name} (level {self.level})"

    def clean(self) -> None:
        if self.frequency == Frequency.CUSTOM and not (self.shift_hours and 1 <= self.shift_hours <= 24 * 366):
            raise ValidationError({"shift_hours": "A custom rotation needs a shift length between 1 and 8784 hours."})
        if not 1 <= (self.interval or 0) <= 52:
            raise ValidationError({"interval": "The interval is between 1 and 52."})
        ids = self.member_ids
        if (
            not isinstance(ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
            or len(set(ids)) != len(ids)
            or len(ids) > 500
        ):
            raise ValidationError({"member_ids": "Give a list of distinct user ids (at most 500), in rotation order."})
        if self.kind == LayerKind.ROTATION and not ids:
            raise ValidationError({"member_ids": "A rotation needs at least one member."})
        parse_restrictions(self.restrictions)


class Shift(TenantOwnedModel):
    """A fixed shift of a calendar layer (imported from iCalendar or Grafana OnCall)."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    uid = models.CharField(max_length=255, blank=True, default="")

    PORTAL_ROLE_ACTIONS = MANAGE

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["layer", "starts_at"], name="oncall_shift_layer_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class Override(TenantOwnedModel):
    """Someone covers a period of a schedule, above every layer. Overrides of one schedule never
    overlap (the service refuses it)."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    PORTAL_ROLE_ACTIONS = MANAGE

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["schedule", "ends_at"], name="oncall_override_end_idx")]

    def __str__(self) -> str:
        return f"override {self.starts_at:%Y-%m-%d %H:%M} → {self.ends_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "An override must end after it starts."})


class FeedToken(TenantOwnedModel):
    """A secret iCalendar feed URL: of one schedule, or of one person across the tenant's
    schedules. Only a SHA-256 hash is stored; the URL is shown once; revoking ends it."""

    name = models.CharField(max_length=120, blank=True, default="")
    schedule = models.ForeignKey(Schedule, null=True, blank=True, on_delete=models.CASCADE, related_name="feeds")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {**MANAGE, "add": STAFF_ROLES, "revoke": STAFF_ROLES, "delete": STAFF_ROLES}

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(schedule__isnull=False) | Q(user__isnull=False), name="oncall_feed_has_subject"),
        ]

    def __str__(self) -> str:
        return f"feed {self.prefix}… ({'revoked' if self.revoked_at else 'active'})"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action: str):
        """Managers see every feed of their tenant; other staff only the feeds they created."""
        queryset = super().scope_queryset(queryset, ctx, action)
        if ctx.is_platform or ctx.role in MANAGER_ROLES:
            return queryset
        return queryset.filter(created_by_id=ctx.user_id)
