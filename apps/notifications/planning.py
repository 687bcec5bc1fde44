"""The fan-out: recipients × preferences × channels → Notification and Delivery rows in bulk.

Everything a decision needs is read up front in a few queries (preferences, personal and
shared channels, each recipient's recent delivery count); each distinct preference is decided
once (local time, quiet hours, digest time, minimum priority per channel), each recipient then
only picks its channels and counts towards its rate limit. On PostgreSQL the notifications and
their deliveries are written by ONE statement (arrays in, ids out); elsewhere by `bulk_create`.
The query count does not grow with the team (docs/notifications.md, "Team fan-out").
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, router
from django.db.models import Count
from django.db.models.base import ModelState
from django.utils import timezone

from .choices import ALL_TYPES, PRIORITY_RANK, ChannelKind, DeliveryStatus, Digest, Priority, SuppressReason
from .models import ChannelConfig, Delivery, Notification, Preference

log = logging.getLogger(__name__)
COUNTED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED)
# plain str values (a choices member would be dumped by its name inside a text[] array)
PENDING, BATCHED, SUPPRESSED = DeliveryStatus.PENDING.value, DeliveryStatus.BATCHED.value, DeliveryStatus.SUPPRESSED.value
EMAIL, IN_APP = ChannelKind.EMAIL.value, ChannelKind.IN_APP.value
# One planned delivery: (owner user id — whose notification carries it, recipient id or None for a
# shared channel, kind, channel id or None, status, reason, next_attempt_at, last_error).
Plan = tuple


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
    notifications: Sequence[Notification]
    pending_ids: list[int]
    delivery_count: int
    failed: list[dict]


def default_preference(tenant_id: int, user_id: int) -> Preference:
    return Preference(tenant_id=tenant_id, user_id=user_id, notification_type=ALL_TYPES, channels=list(settings.NOTIFICATIONS_DEFAULT_CHANNELS))


def preferences_for(tenant_id: int, user_ids, notification_type: str) -> dict[int, Preference]:
    """Each user's preference for this type: their row for the type, else their `*` row."""
    found: dict[int, Preference] = {}
    rows = ids_filter(Preference.objects.filter(tenant_id=tenant_id, notification_type__in=[notification_type, ALL_TYPES]), "user_id", user_ids)
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


def recent_counts(user_ids, now: datetime, at_least: int = 1) -> dict[int, int]:
    """Each recipient's deliveries in the rate-limit window, for those with at least `at_least`
    (a count further from the limit than one fan-out can bring it is as good as none)."""
    since = now - timedelta(seconds=settings.NOTIFICATIONS_RATE_LIMIT_WINDOW)
    rows = (
        ids_filter(Delivery.objects.filter(created_at__gte=since, status__in=COUNTED), "recipient_id", user_ids)
        .values_list("recipient_id")
        .annotate(n=Count("id"))
        .filter(n__gte=max(at_least, 1))
    )
    return dict(rows)


def ids_filter(queryset, field: str, ids):
    """`field IN ids` — as `= ANY(array)` on PostgreSQL for long lists (one parameter, formatted
    at once, instead of thousands the driver would bind one by one)."""
    ids = list(ids)
    if connections[queryset.db].vendor != "postgresql" or len(ids) <= 100:
        return queryset.filter(**{f"{field}__in": ids})
    f = queryset.model._meta.get_field(field)
    array = f"%s::{f.cast_db_type(connections[queryset.db])}[]"  # the column's type: a smallint[] would not be hashed
    return queryset.extra(where=[f'"{queryset.model._meta.db_table}"."{f.column}" = ANY({array})'], params=[int_array(ids)])


def suppressed(reason: SuppressReason, at: datetime) -> tuple:
    return (SUPPRESSED, reason.value, at, f"suppressed: {reason.label.lower()}")


class Planner:
    """Decides, for each recipient and channel, whether a delivery is pending, batched for a
    digest, or suppressed (and why). Everything but the rate limit depends on the preference
    alone, so it is decided once per distinct preference (most of a team shares the default)."""

    def __init__(self, *, tenant, spec: Spec, user_ids: list[int], now: datetime, auto_send: bool = True, emailed=frozenset()):
        self.tenant, self.spec, self.now, self.auto_send = tenant, spec, now, auto_send
        self.emailed = frozenset(emailed)  # recipients the publisher mails itself: no email delivery
        self.prefs = preferences_for(tenant.pk, user_ids, spec.notification_type) if auto_send else {}
        channels = list(ChannelConfig.objects.filter(tenant_id=tenant.pk, enabled=True)) if auto_send else []
        self.shared = [c for c in channels if c.user_id is None and c.accepts(spec.notification_type, spec.priority)]
        self.personal: dict[int, list[ChannelConfig]] = {}
        for c in channels:
            if c.user_id is not None:
                self.personal.setdefault(c.user_id, []).append(c)
        self.limit = settings.NOTIFICATIONS_RATE_LIMIT_COUNT
        # the most deliveries one recipient can count against the limit in this fan-out: an e-mail
        # and one per personal channel; a recipient below limit - reach is never limited by it
        reach = 1 + max(map(len, self.personal.values()), default=0)
        self.counts = recent_counts(user_ids, now, at_least=self.limit - reach + 1) if auto_send else {}
        self.rank = PRIORITY_RANK[spec.priority]
        self.default = default_preference(tenant.pk, None)  # one for everyone without a row
        self.decided: dict[int, list] = {}  # id(preference) → [(kind, fixed outcome or None)]
        self.rate_limited = suppressed(SuppressReason.RATE_LIMIT, now)
        self.sendable = (PENDING, "", now, "")

    def decide(self, pref: Preference) -> list:
        """Per channel kind of the preference: the outcome fixed by the preference (suppressed by
        minimum priority or quiet hours, batched for a digest), or None (pending unless the
        recipient's rate limit is reached)."""
        local = local_now(pref, self.tenant.timezone, self.now)
        quiet = in_quiet_hours(pref, local) and not (self.spec.priority == Priority.URGENT and pref.urgent_bypasses_quiet)
        digest = pref.digest != Digest.OFF and self.spec.priority != Priority.URGENT
        kinds = []
        for kind in dict.fromkeys(pref.channels or []):
            if kind == IN_APP:
                continue
            if self.rank < pref.min_rank(kind):
                fixed = suppressed(SuppressReason.PREFERENCE, self.now)
            elif quiet:
                fixed = suppressed(SuppressReason.QUIET_HOURS, self.now)
            elif digest:
                fixed = (BATCHED, "", digest_due(pref, local), "")
            else:
                fixed = None
            kinds.append((str(kind), fixed))
        self.decided[id(pref)] = kinds
        return kinds

    def plan(self, uid: int) -> list[Plan]:
        """The deliveries of one recipient's notification."""
        pref = self.prefs.get(uid) or self.default
        kinds = self.decided.get(id(pref))
        if kinds is None:
            kinds = self.decide(pref)
        out = []
        for kind, fixed in kinds:
            if kind == EMAIL and uid in self.emailed:
                continue
            targets = (None,) if kind == EMAIL else [c.pk for c in self.personal.get(uid, ()) if c.kind == kind]
            for channel_id in targets:
                outcome = fixed
                if outcome is None:
                    sent = self.counts.get(uid, 0)
                    if sent >= self.limit:
                        outcome = self.rate_limited
                    else:
                        self.counts[uid], outcome = sent + 1, self.sendable
                out.append((uid, uid, kind, channel_id, *outcome))
        return out

    def shared_plans(self, owner: int) -> list[Plan]:
        """One delivery per shared team channel per fan-out (not one per recipient), carried by
        the first recipient's notification."""
        return [(owner, None, str(c.kind), c.pk, *self.sendable) for c in self.shared]


def fan_out(*, tenant, spec: Spec, user_ids: list[int], event_id=None, auto_send: bool = True, emailed=frozenset()) -> FanOut:
    """Create one notification per recipient and its deliveries, in bulk (caller's transaction).
    A recipient whose planning fails is reported in `failed` (their notification stays, in-app);
    the others go on. Recipients in `emailed` already get an email about this from the publisher:
    their other channels only."""
    now = timezone.now()
    user_ids = list(dict.fromkeys(user_ids))
    planner = Planner(tenant=tenant, spec=spec, user_ids=user_ids, now=now, auto_send=auto_send, emailed=emailed)
    plans: list[Plan] = []
    failed: list[dict] = []
    if auto_send:
        for uid in user_ids:
            try:
                plans.extend(planner.plan(uid))
            except Exception as exc:  # one bad preference row must not stop the others
                log.exception("planning deliveries for user %s failed", uid)
                failed.append({"user_id": uid, "error": str(exc)})
        if user_ids:
            plans.extend(planner.shared_plans(user_ids[0]))
    template = Notification(
        tenant_id=tenant.pk, notification_type=spec.notification_type, title=spec.title,
        message=spec.message, priority=spec.priority, action_url=spec.action_url, action_label=spec.action_label,
        related_entity_type=spec.related_entity_type, related_entity_id=spec.related_entity_id,
        metadata=spec.metadata, event_id=event_id, created_at=now, updated_at=now,
    )
    if not user_ids:
        return FanOut(notifications=[], pending_ids=[], delivery_count=0, failed=failed)
    using = router.db_for_write(Notification)
    write = write_set_based if connections[using].vendor == "postgresql" else write_with_orm
    ids, pending, count = write(using, template, user_ids, plans, now)
    return FanOut(notifications=SavedNotifications(template, user_ids, ids, using), pending_ids=pending, delivery_count=count, failed=failed)


class SavedNotifications(Sequence):
    """The written notifications as saved instances, each built when first read: copies of the
    template's attributes with their ids (no `__init__`; Notification has no init signal
    receivers). Most callers only count them; 40,000 objects per 10,000-member fan-out made the
    garbage collector walk the whole heap (a full collection in most rounds)."""

    def __init__(self, template: Notification, user_ids: list[int], ids: dict[int, int], using: str):
        self._base = {k: v for k, v in template.__dict__.items() if k != "_state"}
        self._user_ids, self._ids, self._using, self._built = user_ids, ids, using, {}

    def __len__(self) -> int:
        return len(self._user_ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        uid = self._user_ids[index]  # IndexError past the end, as a list
        obj = self._built.get(uid)
        if obj is None:
            obj = self._built[uid] = Notification.__new__(Notification)
            state = ModelState()
            state.adding, state.db = False, self._using
            obj.__dict__.update(self._base, id=self._ids[uid], recipient_id=uid, _state=state)
        return obj


def delivery_template(tenant_id: int, now: datetime) -> Delivery:
    return Delivery(tenant_id=tenant_id, kind=EMAIL, next_attempt_at=now, created_at=now, updated_at=now)


def write_with_orm(using: str, template: Notification, user_ids: list[int], plans: list[Plan], now: datetime):
    """The portable writer (SQLite, `make run`): two `bulk_create`s."""
    batch = settings.NOTIFICATIONS_BULK_BATCH
    rows = []
    for uid in user_ids:
        n = Notification(**{f.attname: getattr(template, f.attname) for f in Notification._meta.concrete_fields if not f.primary_key})
        n.recipient_id = uid
        rows.append(n)
    Notification.objects.using(using).bulk_create(rows, batch_size=batch)
    ids = {n.recipient_id: n.pk for n in rows}
    fields = ("recipient_id", "kind", "channel_id", "status", "reason", "next_attempt_at", "last_error")
    deliveries = [
        Delivery(tenant_id=template.tenant_id, notification_id=ids[p[0]], created_at=now, updated_at=now, **dict(zip(fields, p[1:], strict=True)))
        for p in plans
    ]
    Delivery.objects.using(using).bulk_create(deliveries, batch_size=batch)
    return ids, [d.pk for d in deliveries if d.status == PENDING], len(deliveries)


# Columns that differ per row, as expressions over the arrays (`t`: recipients, `p`: plans,
# `o`: the distinct outcomes, `n`: the inserted notifications); every other column is bound once
# from a template instance, so a column added to the model later gets its default here too.
NOTIFICATION_ROWS = {"recipient_id": "t.u"}
# A delivery's tenant and recipient come from its notification row (their keys are checked there).
DELIVERY_ROWS = {
    "notification_id": "n.id", "tenant_id": "n.tenant_id", "recipient_id": "CASE WHEN p.personal THEN n.recipient_id END", "channel_id": "p.channel_id",
    "kind": "o.kind", "status": "o.status", "reason": "o.reason", "next_attempt_at": "o.next_attempt_at", "last_error": "o.last_error",
}
OUTCOME = ("kind", "status", "reason", "next_attempt_at", "last_error")  # plan[2], plan[4:]


def _insert(connection, model, varying: dict[str, str], template, source: str) -> tuple[str, list]:
    """`INSERT INTO <table> (<every column but the id>) SELECT <exprs> FROM <source>`."""
    columns, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(connection.ops.quote_name(f.column))
        if f.attname in varying:
            exprs.append(varying[f.attname])
        else:
            exprs.append(f"%s::{f.cast_db_type(connection)}")
            params.append(f.get_db_prep_save(getattr(template, f.attname), connection))
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} FROM {source}", params


def int_array(values) -> str:
    """An integer array as its text literal: psycopg would dump each element in Python (~1.5 µs;
    a datetime ~6 µs), which was a third of a 10,000-member fan-out."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def write_set_based(using: str, template: Notification, user_ids: list[int], plans: list[Plan], now: datetime):
    """PostgreSQL: one statement writes the notifications (one per recipient, ids in recipient
    order) and their deliveries (joined to their notification by owner), and returns the ids —
    no id round trip, no re-read. Per delivery only integers travel (owner, personal or shared,
    channel, outcome number); the few distinct outcomes (kind, status, reason, due, error) go once."""
    connection = connections[using]
    opts = Delivery._meta
    cast = {name: opts.get_field(name).cast_db_type(connection) for name in (*OUTCOME, "recipient", "channel")}
    outcomes: dict[tuple, int] = {}
    picks = [outcomes.setdefault((p[2], *p[4:]), len(outcomes) + 1) for p in plans]
    insert_n, params_n = _insert(
        connection, Notification, NOTIFICATION_ROWS, template, f"unnest(%s::{cast['recipient']}[]) WITH ORDINALITY AS t(u, i) ORDER BY t.i",
    )
    source = (f"unnest(%s::{cast['recipient']}[], %s::boolean[], %s::{cast['channel']}[], %s::integer[]) "
              "AS p(owner, personal, channel_id, k) JOIN n ON n.recipient_id = p.owner JOIN o ON o.k = p.k")
    insert_d, params_d = _insert(connection, Delivery, DELIVERY_ROWS, delivery_template(template.tenant_id, now), source)
    sql = (
        f"WITH n AS ({insert_n} RETURNING id, tenant_id, recipient_id), "
        f"o AS (SELECT * FROM unnest({', '.join(f'%s::{cast[c]}[]' for c in OUTCOME)}) WITH ORDINALITY AS o({', '.join(OUTCOME)}, k)), "
        f"d AS ({insert_d} RETURNING id, status) "
        "SELECT (SELECT array_agg(n.id) FROM n), (SELECT array_agg(n.recipient_id) FROM n), "
        "(SELECT array_agg(d.id ORDER BY d.id) FROM d WHERE d.status = %s), (SELECT count(*) FROM d)"
    )
    columns = list(zip(*outcomes, strict=True)) if outcomes else [[] for _ in OUTCOME]
    # placeholders in order: the notifications' constants and recipients, the outcomes, the
    # deliveries' constants and plan arrays
    params = [
        *params_n, int_array(user_ids), *(list(c) for c in columns), *params_d,
        int_array(p[0] for p in plans), "{" + ",".join("f" if p[1] is None else "t" for p in plans) + "}", int_array(p[3] for p in plans),
        int_array(picks), PENDING,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        n_ids, n_users, pending, count = cursor.fetchone()
    return dict(zip(n_users or [], n_ids or [], strict=True)), pending or [], count


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with ±20% jitter: base·2^(attempts-1), capped."""
    base = settings.NOTIFICATIONS_BACKOFF_BASE * 2 ** max(0, attempts - 1)
    return min(settings.NOTIFICATIONS_BACKOFF_MAX, base) * random.uniform(0.8, 1.2)
