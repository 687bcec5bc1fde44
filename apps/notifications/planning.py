"""The fan-out: recipients × preferences × channels → Notification and Delivery rows in bulk.

Everything a decision needs is read up front in a few queries (preferences, personal and
shared channels, each recipient's recent delivery count), the rows are built in memory and
written with two `bulk_create`s, so notifying 10,000 people costs a handful of round trips.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from .choices import ALL_TYPES, PRIORITY_RANK, ChannelKind, DeliveryStatus, Digest, Priority, SuppressReason
from .models import ChannelConfig, Delivery, Notification, Preference

log = logging.getLogger(__name__)
COUNTED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED)


@dataclass
class Spec:
    """What to say (the same for every recipient of a fan-out)."""

    notification_type: str
    title: str
    message: str = ""
    priority: str = Priority.MEDIUM
    action_url: str = ""
    action_label: str = ""
    related_entity_type: str = ""
    related_entity_id: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class FanOut:
    notifications: list[Notification]
    deliveries: list[Delivery]
    failed: list[dict]

    @property
    def pending_ids(self) -> list[int]:
        return [d.pk for d in self.deliveries if d.status == DeliveryStatus.PENDING]


def default_preference(tenant_id: int, user_id: int) -> Preference:
    return Preference(tenant_id=tenant_id, user_id=user_id, notification_type=ALL_TYPES, channels=list(settings.NOTIFICATIONS_DEFAULT_CHANNELS))


def preferences_for(tenant_id: int, user_ids, notification_type: str) -> dict[int, Preference]:
    """Each user's preference for this type: their row for the type, else their `*` row."""
    found: dict[int, Preference] = {}
    rows = Preference.objects.filter(tenant_id=tenant_id, user_id__in=user_ids, notification_type__in=[notification_type, ALL_TYPES])
    for pref in rows.order_by("user_id"):
        if pref.user_id not in found or pref.notification_type != ALL_TYPES:
            found[pref.user_id] = pref
    return found


def local_now(pref: Preference, tenant_tz: str, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(pref.timezone or tenant_tz or "UTC"))


def in_quiet_hours(pref: Preference, local: datetime) -> bool:
    """Whether the local wall-clock time falls in [quiet_start, quiet_end) (may wrap midnight)."""
    if pref.quiet_start is None or pref.quiet_end is None:
        return False
    t = local.time().replace(tzinfo=None)
    start, end = pref.quiet_start, pref.quiet_end
    return start <= t < end if start < end else (t >= start or t < end)


def digest_due(pref: Preference, local: datetime) -> datetime:
    """When a batched row is sent: the next full hour, or the next DIGEST_DAILY_HOUR local time."""
    if pref.digest == Digest.HOURLY:
        return (local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).astimezone(ZoneInfo("UTC"))
    hour = settings.NOTIFICATIONS_DIGEST_DAILY_HOUR
    day = local.date() if local.time() < time(hour) else local.date() + timedelta(days=1)
    # Wall-clock construction (not local + 24h) so a DST change does not shift the hour.
    return datetime.combine(day, time(hour), tzinfo=local.tzinfo).astimezone(ZoneInfo("UTC"))


def recent_counts(user_ids, now: datetime) -> dict[int, int]:
    since = now - timedelta(seconds=settings.NOTIFICATIONS_RATE_LIMIT_WINDOW)
    rows = (
        Delivery.objects.filter(recipient_id__in=user_ids, created_at__gte=since, status__in=COUNTED)
        .values("recipient_id")
        .annotate(n=Count("id"))
    )
    return {r["recipient_id"]: r["n"] for r in rows}


class Planner:
    """Decides, for each recipient and channel, whether a delivery is pending, batched for a
    digest, or suppressed (and why)."""

    def __init__(self, *, tenant, spec: Spec, user_ids: list[int], now: datetime, auto_send: bool = True):
        self.tenant, self.spec, self.now, self.auto_send = tenant, spec, now, auto_send
        self.prefs = preferences_for(tenant.pk, user_ids, spec.notification_type) if auto_send else {}
        channels = list(ChannelConfig.objects.filter(tenant_id=tenant.pk, enabled=True)) if auto_send else []
        self.shared = [c for c in channels if c.user_id is None and c.accepts(spec.notification_type, spec.priority)]
        self.personal: dict[int, list[ChannelConfig]] = {}
        for c in channels:
            if c.user_id is not None:
                self.personal.setdefault(c.user_id, []).append(c)
        self.counts = recent_counts(user_ids, now) if auto_send else {}
        self.rank = PRIORITY_RANK[spec.priority]

    def deliveries_for(self, notification: Notification) -> list[Delivery]:
        if not self.auto_send:
            return []
        uid = notification.recipient_id
        pref = self.prefs.get(uid) or default_preference(self.tenant.pk, uid)
        local = local_now(pref, self.tenant.timezone, self.now)
        quiet = in_quiet_hours(pref, local) and not (self.spec.priority == Priority.URGENT and pref.urgent_bypasses_quiet)
        out = []
        for kind in dict.fromkeys(pref.channels or []):
            if kind == ChannelKind.IN_APP:
                continue
            targets = [None] if kind == ChannelKind.EMAIL else [c for c in self.personal.get(uid, []) if c.kind == kind]
            for channel in targets:
                d = Delivery(tenant_id=self.tenant.pk, notification=notification, recipient_id=uid, kind=kind, channel=channel, next_attempt_at=self.now)
                if self.rank < pref.min_rank(kind):
                    d.status, d.reason = DeliveryStatus.SUPPRESSED, SuppressReason.PREFERENCE
                elif quiet:
                    d.status, d.reason = DeliveryStatus.SUPPRESSED, SuppressReason.QUIET_HOURS
                elif pref.digest != Digest.OFF and self.spec.priority != Priority.URGENT:
                    d.status, d.next_attempt_at = DeliveryStatus.BATCHED, digest_due(pref, local)
                elif self.counts.get(uid, 0) >= settings.NOTIFICATIONS_RATE_LIMIT_COUNT:
                    d.status, d.reason = DeliveryStatus.SUPPRESSED, SuppressReason.RATE_LIMIT
                else:
                    self.counts[uid] = self.counts.get(uid, 0) + 1
                if d.status == DeliveryStatus.SUPPRESSED:
                    d.last_error = f"suppressed: {d.get_reason_display().lower()}"
                out.append(d)
        return out

    def shared_deliveries(self, first: Notification) -> list[Delivery]:
        """One delivery per shared team channel per fan-out (not one per recipient)."""
        return [
            Delivery(tenant_id=self.tenant.pk, notification=first, kind=c.kind, channel=c, next_attempt_at=self.now)
            for c in self.shared
        ]


def fan_out(*, tenant, spec: Spec, user_ids: list[int], event_id=None, auto_send: bool = True) -> FanOut:
    """Create one notification per recipient and its deliveries, in bulk (caller's transaction).
    A recipient whose planning fails is reported in `failed`; the others go on."""
    now = timezone.now()
    planner = Planner(tenant=tenant, spec=spec, user_ids=user_ids, now=now, auto_send=auto_send)
    notifications = [
        Notification(
            tenant_id=tenant.pk, recipient_id=uid, notification_type=spec.notification_type, title=spec.title,
            message=spec.message, priority=spec.priority, action_url=spec.action_url, action_label=spec.action_label,
            related_entity_type=spec.related_entity_type, related_entity_id=spec.related_entity_id,
            metadata=spec.metadata, event_id=event_id, created_at=now, updated_at=now,
        )
        for uid in dict.fromkeys(user_ids)
    ]
    batch = settings.NOTIFICATIONS_BULK_BATCH
    Notification.objects.bulk_create(notifications, batch_size=batch)
    deliveries: list[Delivery] = []
    failed: list[dict] = []
    for n in notifications:
        try:
            deliveries.extend(planner.deliveries_for(n))
        except Exception as exc:  # one bad preference row must not stop the others
            log.exception("planning deliveries for user %s failed", n.recipient_id)
            failed.append({"user_id": n.recipient_id, "error": str(exc)})
    if notifications:
        deliveries.extend(planner.shared_deliveries(notifications[0]))
    for d in deliveries:
        d.created_at = d.updated_at = now
    Delivery.objects.bulk_create(deliveries, batch_size=batch)
    return FanOut(notifications=notifications, deliveries=deliveries, failed=failed)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with ±20% jitter: base·2^(attempts-1), capped."""
    base = settings.NOTIFICATIONS_BACKOFF_BASE * 2 ** max(0, attempts - 1)
    return min(settings.NOTIFICATIONS_BACKOFF_MAX, base) * random.uniform(0.8, 1.2)
