"""Maintenance windows (consulted by alerts, tickets, monitoring, deployments) and the records
of maintenance runs (purges, VACUUM, cache cleanup)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from apps.core.choices import Role
from apps.core.models import PortalManager, TenantOwnedModel

from .choices import Recurrence, RunStatus, WindowScope, WindowSource

R = Role


def _validate_tz(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r} (use an IANA name such as Europe/Berlin).") from exc


class MaintenanceWindow(TenantOwnedModel):
    """A period during which a tenant (or some of its objects) is under planned maintenance.

    One-off windows run from `starts_at` to `ends_at`. Recurring windows start at every
    occurrence of a cron expression or an RRULE, evaluated in `timezone` (so "02:00 every Sunday"
    stays 02:00 local across DST), and last `duration_minutes`; `starts_at`/`ends_at` then bound
    the whole series (ends_at empty = forever). Scope is the whole tenant, or specific objects
    (content type + id, see `MaintenanceWindowObject`) and/or label matchers (every key=value of
    `label_matchers` must be among the object's labels).
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    recurrence = models.CharField(max_length=10, choices=Recurrence.choices, default=Recurrence.ONE_OFF)
    starts_at = models.DateTimeField(help_text="Start (one-off) or first possible start (recurring).")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="End (one-off) or end of the series (recurring, optional).")
    cron = models.CharField(max_length=120, blank=True, default="", help_text="Recurring start, e.g. '0 2 * * 0'.")
    rrule = models.CharField(max_length=500, blank=True, default="", help_text="e.g. 'FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0'.")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[_validate_tz])
    scope = models.CharField(max_length=10, choices=WindowScope.choices, default=WindowScope.TENANT)
    label_matchers = models.JSONField(default=dict, blank=True, help_text='e.g. {"instance": "db-1"}')
    source = models.CharField(max_length=10, choices=WindowSource.choices, default=WindowSource.MANUAL)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    PARTNER_VISIBLE = True
    PORTAL_ROLE_ACTIONS = {
        "add": {R.OWNER, R.ADMIN, R.OPERATOR},
        "change": {R.OWNER, R.ADMIN, R.OPERATOR},
        "delete": {R.OWNER, R.ADMIN},
    }

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["tenant", "enabled", "starts_at"], name="maint_window_tenant_idx")]

    def __str__(self) -> str:
        return self.name

    # -- validation ------------------------------------------------------------------------
    def clean(self):
        errors: dict[str, str] = {}
        if self.recurrence == Recurrence.ONE_OFF:
            if not self.ends_at:
                errors["ends_at"] = "A one-off window needs an end."
            elif self.starts_at and self.ends_at <= self.starts_at:
                errors["ends_at"] = "The end must be after the start."
        else:
            if not self.duration_minutes:
                errors["duration_minutes"] = "A recurring window needs a duration in minutes."
            elif self.duration_minutes > 7 * 24 * 60:
                errors["duration_minutes"] = "A recurring window lasts at most 7 days."
        if self.recurrence == Recurrence.CRON:
            from croniter import croniter

            if not self.cron or not croniter.is_valid(self.cron) or len(self.cron.split()) != 5:
                errors["cron"] = "Give a valid 5-field cron expression (minute hour day month weekday)."
        if self.recurrence == Recurrence.RRULE:
            try:
                self._rule(datetime(2000, 1, 1))
            except (ValueError, TypeError) as exc:
                errors["rrule"] = f"Invalid RRULE: {exc}"
        if not isinstance(self.label_matchers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in (self.label_matchers or {}).items()
        ):
            errors["label_matchers"] = 'Label matchers are an object of strings, e.g. {"instance": "db-1"}.'
        if errors:
            raise ValidationError(errors)

    # -- evaluation ------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

    def _rule(self, dtstart: datetime):
        from dateutil.rrule import rrulestr

        text = self.rrule.strip()
        if text.upper().startswith("RRULE:"):
            text = text[6:]
        if not text:
            raise ValueError("empty rule")
        return rrulestr(text, dtstart=dtstart)

    def occurrence_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) of the occurrence covering `at`, or None."""
        if not self.enabled or (self.starts_at and at < self.starts_at):
            return None
        if self.recurrence == Recurrence.ONE_OFF:
            return (self.starts_at, self.ends_at) if self.ends_at and at < self.ends_at else None
        if self.ends_at and at >= self.ends_at:
            return None
        duration = timedelta(minutes=self.duration_minutes or 0)
        local_at = at.astimezone(self.tz)
        if self.recurrence == Recurrence.CRON:
            from croniter import croniter

            # The last start at or before `at`, computed in local time (DST-safe).
            itr = croniter(self.cron, local_at + timedelta(seconds=1))
            start = itr.get_prev(datetime)
        else:
            naive_start = self.starts_at.astimezone(self.tz).replace(tzinfo=None)
            prev = self._rule(naive_start).before(local_at.replace(tzinfo=None), inc=True)
            if prev is None:
                return None
            start = prev.replace(tzinfo=self.tz)
        if start < self.starts_at:
            return None
        end = start + duration
        return (start, end) if at < end else None

    def is_active(self, at: datetime | None = None) -> bool:
        return self.occurrence_at(at or timezone.now()) is not None

    def covers(self, obj=None, labels: dict | None = None) -> bool:
        """Whether this window's scope includes `obj` (and/or an object with `labels`)."""
        if self.scope == WindowScope.TENANT:
            return True
        if obj is not None:
            ct_id = ContentType.objects.get_for_model(type(obj)).pk
            for item in self._scoped_objects():
                if item == (ct_id, obj.pk):
                    return True
            if labels is None:
                labels = getattr(obj, "labels", None)
        if self.label_matchers and labels:
            return all(str(labels.get(k)) == v for k, v in self.label_matchers.items())
        return False

    def _scoped_objects(self) -> list[tuple[int, int]]:
        cached = getattr(self, "_objects_cache", None)
        if cached is None:
            cached = [(o.content_type_id, o.object_id) for o in self.objects_in_scope.all()]
            self._objects_cache = cached
        return cached


class MaintenanceWindowObject(models.Model):
    """One object (any model, by content type and id) inside a window's scope."""

    window = models.ForeignKey(MaintenanceWindow, on_delete=models.CASCADE, related_name="objects_in_scope")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()

    objects = PortalManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["window", "content_type", "object_id"], name="maint_window_obj_uniq")]
        indexes = [models.Index(fields=["content_type", "object_id"], name="maint_window_obj_idx")]

    def __str__(self) -> str:
        return f"{self.content_type.app_label}.{self.content_type.model}#{self.object_id}"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        windows = MaintenanceWindow.scope_queryset(MaintenanceWindow.objects.all(), ctx, action)
        return queryset.filter(window__in=windows)


class MaintenanceRun(models.Model):
    """One run of a registered maintenance task: what it removed, freed and how long it took.

    A platform resource (not tenant-owned): platform staff see the runs, platform admins start them.
    """

    task = models.CharField(max_length=100, db_index=True)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    rows_removed = models.JSONField(default=dict, blank=True, help_text="Rows removed (or that would be) per table.")
    total_rows = models.BigIntegerField(default=0)
    bytes_freed = models.BigIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    triggered_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    trigger = models.CharField(max_length=20, default="system", help_text="admin, command, schedule, api, system")

    objects = PortalManager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["task", "-started_at"], name="maint_run_task_idx")]

    def __str__(self) -> str:
        return f"{self.task} @ {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
