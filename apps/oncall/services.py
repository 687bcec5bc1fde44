"""Every write of the on-call app: schedules, layers, overrides (never overlapping), calendar
imports, feed tokens, and the periodic gap and shift-change checks. Reads are in selectors.py,
the arithmetic in engine.py, iCalendar in ical.py."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import config_change, config_deleted
from apps.core.choices import STAFF_ROLES
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant, require_named_tenant

from . import engine, selectors
from .choices import LayerKind
from .models import FeedToken, Layer, Override, Schedule, Shift

GAP_HORIZON = timedelta(days=7)
SCHEDULE = "oncall.schedule"


def _require(actor, action: str, obj) -> None:
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(f"Your role does not allow you to {action} this {obj._meta.verbose_name}.")


def _save(obj, *, actor, action: str, check=None):
    if obj._state.adding:
        require_named_tenant(getattr(obj, "tenant_id", None), actor=actor)
        assign_tenant(obj, actor=actor)
        if actor is not None and not policy.allows(actor, action, type(obj)):
            raise PermissionDenied(f"Your role does not allow you to {action} {type(obj)._meta.verbose_name_plural}.")
    else:
        _require(actor, action, obj)
    with transaction.atomic(), config_change(obj, actor=actor, ignore=("gap_start", "shifts_notified_until")):
        obj.full_clean()
        if check:
            check(obj)
        obj.save()
    return obj


def _delete(obj, *, actor) -> None:
    _require(actor, "delete", obj)
    with transaction.atomic():
        config_deleted(obj, actor=actor)
        obj.delete()


def tenant_member_ids(tenant_id: int, user_ids) -> set[int]:
    """Which of these users are active staff of the tenant (the only people a schedule names)."""
    from django.apps import apps

    Membership = apps.get_model("tenants", "Membership")
    return set(
        Membership.objects.filter(
            organization_id=tenant_id, is_active=True, user__is_active=True, role__in=STAFF_ROLES, user_id__in=list(user_ids)
        ).values_list("user_id", flat=True)
    )


def _check_people(tenant_id: int, user_ids, field: str) -> None:
    ids = {u for u in user_ids if u is not None}
    unknown = ids - tenant_member_ids(tenant_id, ids)
    if unknown:
        raise ValidationError({field: f"Not staff of this schedule's tenant: user ids {sorted(unknown)}."})


def _same_tenant(obj, parent, field: str) -> None:
    if parent is not None and obj.tenant_id != parent.tenant_id:
        raise ValidationError({field: "Pick a schedule of the same tenant."})


# -- schedules -------------------------------------------------------------------------------
def schedule_create(*, actor, owners=None, **fields) -> Schedule:
    """Create a schedule (owners: users told about gaps; staff of the schedule's tenant)."""
    schedule = Schedule(**fields)
    with transaction.atomic():
        _save(schedule, actor=actor, action="add")
        if owners is not None:
            _check_people(schedule.tenant_id, [u.pk for u in owners], "owners")
            schedule.owners.set(owners)
    return schedule


def schedule_update(schedule: Schedule, *, actor, owners=None, **fields) -> Schedule:
    fields.pop("tenant", None)
    fields.pop("tenant_id", None)
    with transaction.atomic():
        for key, value in fields.items():
            setattr(schedule, key, value)
        _save(schedule, actor=actor, action="change")
        if owners is not None:
            _check_people(schedule.tenant_id, [u.pk for u in owners], "owners")
            schedule.owners.set(owners)
    return schedule


def schedule_delete(schedule: Schedule, *, actor) -> None:
    _delete(schedule, actor=actor)


# -- layers ----------------------------------------------------------------------------------
def _layer_rules(layer: Layer) -> None:
    _same_tenant(layer, layer.schedule, "schedule")
    _check_people(layer.tenant_id, layer.member_ids, "member_ids")


def layer_create(*, actor, schedule: Schedule, **fields) -> Layer:
    """Add a layer to a schedule (members must be staff of its tenant; one layer per level)."""
    fields.pop("tenant", None)
    layer = Layer(schedule=schedule, tenant_id=schedule.tenant_id, **fields)
    _require(actor, "change", schedule)
    if Layer.objects.filter(schedule=schedule, level=layer.level).exists():
        raise ValidationError({"level": f"This schedule already has a layer at level {layer.level}; pick another level."})
    return _save(layer, actor=actor, action="add", check=_layer_rules)


def layer_update(layer: Layer, *, actor, **fields) -> Layer:
    fields.pop("tenant", None)
    if "schedule" in fields and fields["schedule"].pk != layer.schedule_id:
        raise ValidationError({"schedule": "A layer cannot move to another schedule; create it there."})
    fields.pop("schedule", None)
    level = fields.get("level", layer.level)
    if Layer.objects.filter(schedule_id=layer.schedule_id, level=level).exclude(pk=layer.pk).exists():
        raise ValidationError({"level": f"This schedule already has a layer at level {level}; pick another level."})
    for key, value in fields.items():
        setattr(layer, key, value)
    return _save(layer, actor=actor, action="change", check=_layer_rules)


def layer_delete(layer: Layer, *, actor) -> None:
    _delete(layer, actor=actor)


# -- overrides -------------------------------------------------------------------------------
def _override_rules(override: Override) -> None:
    _same_tenant(override, override.schedule, "schedule")
    _check_people(override.tenant_id, [override.user_id], "user")
    # the schedule's row lock serialises overrides of one schedule, so the check below holds
    Schedule.objects.select_for_update().filter(pk=override.schedule_id).first()
    clash = (
        Override.objects.filter(schedule_id=override.schedule_id, starts_at__lt=override.ends_at, ends_at__gt=override.starts_at)
        .exclude(pk=override.pk)
        .first()
    )
    if clash is not None:
        raise ValidationError(
            {
                "starts_at": (
                    f"This override overlaps another one ({clash.starts_at:%Y-%m-%d %H:%M} → {clash.ends_at:%Y-%m-%d %H:%M} UTC, "
                    f"user {clash.user_id}); shorten or delete that one first."
                )
            }
        )


def override_create(*, actor, schedule: Schedule, user, starts_at: datetime, ends_at: datetime, reason: str = "") -> Override:
    """Someone covers [starts_at, ends_at) of a schedule; overlapping another override is a 400."""
    _require(actor, "change", schedule)
    override = Override(
        schedule=schedule,
        tenant_id=schedule.tenant_id,
        user=user,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    return _save(override, actor=actor, action="add", check=_override_rules)


def override_update(override: Override, *, actor, **fields) -> Override:
    fields.pop("tenant", None)
    if "schedule" in fields and fields["schedule"].pk != override.schedule_id:
        raise ValidationError({"schedule": "An override cannot move to another schedule."})
    fields.pop("schedule", None)
    for key, value in fields.items():
        setattr(override, key, value)
    return _save(override, actor=actor, action="change", check=_override_rules)


def override_delete(override: Override, *, actor) -> None:
    _delete(override, actor=actor)


# -- calendar layers (iCalendar, Grafana OnCall) ---------------------------------------------
def calendar_layer_replace(
    *, actor, schedule: Schedule, name: str, level: int, shifts: list[tuple[datetime, datetime, int, str]]
) -> Layer:
    """Create or refill the calendar layer of `schedule` at `level` with these shifts."""
    _require(actor, "change", schedule)
    _check_people(schedule.tenant_id, {s[2] for s in shifts}, "shifts")
    with transaction.atomic():
        layer = Layer.objects.filter(schedule=schedule, level=level).first()
        if layer is not None and layer.kind != LayerKind.CALENDAR:
            raise ValidationError({"level": f"Level {level} holds a rotation; import into a free level or a calendar layer."})
        if layer is None:
            layer = Layer(
                schedule=schedule,
                tenant_id=schedule.tenant_id,
                kind=LayerKind.CALENDAR,
                level=level,
                name=name,
                start_date=timezone.now().date(),
                member_ids=[],
            )
            _save(layer, actor=actor, action="add")
        layer.shifts.all().delete()
        Shift.objects.bulk_create(
            [
                Shift(tenant_id=schedule.tenant_id, layer=layer, starts_at=s, ends_at=e, user_id=u, uid=uid[:255])
                for s, e, u, uid in shifts
            ],
            batch_size=1000,
        )
    return layer


def schedule_import_ical(
    schedule: Schedule, *, actor, data: bytes, level: int | None = None, name: str = "Imported calendar", now=None
) -> dict:
    """Import an iCalendar file (RFC 5545) as a calendar layer: each event's attendee e-mail,
    or its summary naming a member (username, e-mail or full name), is on call for the event.
    Bounded: recurrences are expanded over the next ICAL_HORIZON_DAYS days only and more than
    ICAL_MAX_EVENTS occurrences is a 400 (ical.py)."""
    from . import ical

    now = now or timezone.now()
    members = _tenant_people(schedule.tenant_id)
    shifts, skipped = ical.parse_shifts(data, members=members, start=now)
    if level is None:
        level = (max(Layer.objects.filter(schedule=schedule).values_list("level", flat=True), default=0) or 0) + 1
    layer = calendar_layer_replace(actor=actor, schedule=schedule, name=name, level=level, shifts=shifts)
    return {"layer": layer, "imported": len(shifts), "skipped": skipped}


def _tenant_people(tenant_id: int) -> dict[str, int]:
    from django.contrib.auth import get_user_model

    ids = tenant_member_ids(
        tenant_id, get_user_model().objects.filter(memberships__organization_id=tenant_id).values_list("pk", flat=True)
    )
    people: dict[str, int] = {}
    for pk, username, email, first, last in (
        get_user_model().objects.filter(pk__in=ids).values_list("pk", "username", "email", "first_name", "last_name")
    ):
        for key in (username, email, f"{first} {last}".strip()):
            if key:
                people[key.lower()] = pk
    return people


# -- feeds -----------------------------------------------------------------------------------
def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def feed_create(*, actor, schedule: Schedule | None = None, user=None, name: str = "") -> tuple[FeedToken, str]:
    """A secret feed URL for a schedule, or for a person (default: the actor) across the tenant's
    schedules. Returns (row, raw token): the token is shown once, only its hash is kept."""
    if schedule is None and user is None:
        user = actor
    if schedule is not None:
        _require(actor, "view", schedule)
        tenant_id = schedule.tenant_id
    else:
        from apps.core.tenancy import acting

        tenant_id = acting(actor).tenant_id if actor is not None else None
        if tenant_id is None:
            raise ValidationError({"schedule": "Name a schedule, or act for a tenant to get your own feed."})
        if actor is not None and user.pk != actor.pk and not policy.allows(actor, "change", Schedule):
            raise PermissionDenied("Only schedule managers create feeds of other people.")
        _check_people(tenant_id, [user.pk], "user")
    raw = "ocf_" + secrets.token_urlsafe(32)
    feed = FeedToken(
        tenant_id=tenant_id,
        schedule=schedule,
        user=user if schedule is None else None,
        name=name,
        prefix=raw[4:14],
        token_hash=_hash(raw),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _save(feed, actor=actor, action="add")
    return feed, raw


def feed_revoke(feed: FeedToken, *, actor, now=None) -> FeedToken:
    _require(actor, "revoke", feed)
    if feed.revoked_at is None:
        feed.revoked_at = now or timezone.now()
        feed.save(update_fields=["revoked_at", "updated_at"])
    return feed


def feed_delete(feed: FeedToken, *, actor) -> None:
    _delete(feed, actor=actor)


def feed_render(raw: str, *, now=None, days: int = 60) -> bytes | None:
    """The iCalendar text of a live feed token (None: unknown or revoked)."""
    from . import ical

    if not raw.startswith("ocf_") or len(raw) > 100:
        return None
    feed = FeedToken.objects.filter(prefix=raw[4:14], revoked_at__isnull=True).select_related("schedule").first()
    if feed is None or not secrets.compare_digest(feed.token_hash, _hash(raw)):
        return None
    now = now or timezone.now()
    FeedToken.objects.filter(pk=feed.pk).update(last_used_at=now)
    start = now - timedelta(days=7)
    if feed.schedule_id:
        schedules = [feed.schedule]
    else:
        schedules = list(Schedule.objects.filter(tenant_id=feed.tenant_id))
    loaded = selectors.load([s.pk for s in schedules], start, start + timedelta(days=days))
    entries = []
    for schedule in schedules:
        layers, overrides = loaded.get(schedule.pk, ([], []))
        for piece in engine.final_schedule(layers, overrides, start, start + timedelta(days=days)):
            if piece.user_id is None or (feed.user_id and piece.user_id != feed.user_id):
                continue
            entries.append((schedule, piece))
    return ical.render_feed(entries, name=feed.schedule.name if feed.schedule_id else f"On call: user {feed.user_id}")


# -- periodic checks -------------------------------------------------------------------------
def _schedule_payload(schedule: Schedule, **extra) -> dict:
    return {
        "id": schedule.pk,
        "object_type": SCHEDULE,
        "title": schedule.name,
        "url": f"/admin/oncall/schedule/{schedule.pk}/change/",
        **extra,
    }


def gaps_check(*, now=None, schedule_ids: list[int] | None = None) -> dict:
    """For every schedule: find the first gap within the next 7 days. A new gap publishes
    `oncall.gap_found` (the alerts app raises an alert; its notify block reaches the owners);
    a closed one publishes `oncall.gap_closed`. Only changes publish, so it runs every few minutes."""
    now = now or timezone.now()
    qs = Schedule.objects.all() if schedule_ids is None else Schedule.objects.filter(pk__in=schedule_ids)
    found = closed = 0
    for chunk_start in range(0, qs.count(), 500):
        schedules = list(qs.order_by("pk").prefetch_related("owners")[chunk_start : chunk_start + 500])
        loaded = selectors.load([s.pk for s in schedules], now, now + GAP_HORIZON)
        for schedule in schedules:
            layers, overrides = loaded.get(schedule.pk, ([], []))
            holes = engine.gaps(engine.final_schedule(layers, overrides, now, now + GAP_HORIZON))
            first = holes[0] if holes else None
            with transaction.atomic():
                if first is not None and schedule.gap_start is None:
                    owners = [u.pk for u in schedule.owners.all()]
                    title = f"On-call gap in '{schedule.name}' from {first.start:%Y-%m-%d %H:%M} UTC"
                    publish(
                        "oncall.gap_found",
                        tenant=schedule.tenant_id,
                        payload=_schedule_payload(
                            schedule,
                            gap_start=first.start.isoformat(),
                            gap_end=first.end.isoformat(),
                            gaps=len(holes),
                            message=f"Nobody is on call {first.start:%Y-%m-%d %H:%M} → {first.end:%Y-%m-%d %H:%M} UTC.",
                            **(
                                {
                                    "notify": {
                                        "type": "oncall_gap",
                                        "priority": "high",
                                        "title": title,
                                        "user_ids": owners,
                                        "message": f"{len(holes)} gap(s) in the next 7 days.",
                                        "action_url": f"/admin/oncall/schedule/{schedule.pk}/change/",
                                        "action_label": "Open schedule",
                                    }
                                }
                                if owners
                                else {}
                            ),
                        ),
                    )
                    found += 1
                elif first is None and schedule.gap_start is not None:
                    publish("oncall.gap_closed", tenant=schedule.tenant_id, payload=_schedule_payload(schedule))
                    closed += 1
                new = first.start if first else None
                if new != schedule.gap_start:
                    Schedule.objects.filter(pk=schedule.pk).update(gap_start=new)
    return {"found": found, "closed": closed}


def shifts_notify(*, now=None, max_lookback=timedelta(hours=1)) -> int:
    """Tell people their shift started or ended since the last run (`oncall.shift_started` /
    `oncall.shift_ended` with a notify block). The first run of a schedule only sets the mark."""
    now = now or timezone.now()
    sent = 0
    schedules = list(Schedule.objects.filter(notify_shifts=True))
    for schedule in schedules:
        with transaction.atomic():
            locked = Schedule.objects.select_for_update(skip_locked=True).filter(pk=schedule.pk).first()
            if locked is None:
                continue
            since = locked.shifts_notified_until
            Schedule.objects.filter(pk=schedule.pk).update(shifts_notified_until=now)
            if since is None or since >= now:
                continue
            since = max(since, now - max_lookback)
            # the slice in force at `since` (clipped) and every handoff up to now
            pieces = selectors.final_schedule(
                schedule.pk, start=since - timedelta(minutes=1), days=((now - since).total_seconds() + 120) / 86400
            )
            for before, after in zip(pieces, pieces[1:], strict=False):
                if not (since < after.start <= now) or before.user_id == after.user_id:
                    continue
                for name, who, verb in (
                    ("oncall.shift_ended", before.user_id, "ended"),
                    ("oncall.shift_started", after.user_id, "started"),
                ):
                    if who is None:
                        continue
                    title = f"Your on-call shift of '{schedule.name}' {verb}"
                    publish(
                        name,
                        tenant=schedule.tenant_id,
                        payload=_schedule_payload(
                            schedule,
                            user_id=who,
                            at=after.start.isoformat(),
                            notify={
                                "type": f"oncall_shift_{verb}",
                                "priority": "medium",
                                "title": title,
                                "user_ids": [who],
                                "action_url": f"/admin/oncall/schedule/{schedule.pk}/change/",
                                "action_label": "Open schedule",
                            },
                        ),
                    )
                    sent += 1
    return sent


@dataclass(frozen=True)
class Uncovered:
    """A schedule of an escalation step with nobody on call: its active-staff owners stand in."""

    schedule_id: int
    name: str
    owner_ids: list[int]


@dataclass(frozen=True)
class Paging:
    """Whom an escalation step's schedules page, and which of them had nobody on call."""

    user_ids: list[int]
    uncovered: list[Uncovered] = field(default_factory=list)


def escalation_paging(*, tenant_id: int, schedule_ids: list[int], next_layer: bool = False, at=None) -> Paging:
    """For an escalation step (apps/alerts): the people on call at `at` in these schedules of the
    tenant (plus the next layer's person when asked), in the step's order, and the schedules with
    nobody on call — a gap, or an on-call person who is no longer active staff of the tenant —
    with their owners who are. Schedules of other tenants are ignored. Three queries and the
    selectors' own."""
    names = dict(Schedule.objects.filter(tenant_id=tenant_id, pk__in=schedule_ids).values_list("pk", "name"))
    ids = [pk for pk in dict.fromkeys(schedule_ids) if pk in names]
    answers = selectors.oncall_now(ids, at=at)
    owners: dict[int, list[int]] = {pk: [] for pk in ids}
    for sid, uid in Schedule.owners.through.objects.filter(schedule_id__in=ids).order_by("user_id").values_list("schedule_id", "user_id"):
        owners[sid].append(uid)
    named = {u for a in answers.values() for u in (a.user_id, a.next_user_id)} | {u for us in owners.values() for u in us}
    staff = tenant_member_ids(tenant_id, named - {None})
    people: list[int] = []
    uncovered: list[Uncovered] = []
    for sid in ids:
        answer = answers.get(sid)
        on_call = answer.user_id if answer is not None and answer.user_id in staff else None
        if on_call is None:
            uncovered.append(Uncovered(sid, names[sid], [u for u in owners[sid] if u in staff]))
        for who in (on_call, answer.next_user_id if answer is not None and next_layer else None):
            if who in staff and who not in people:
                people.append(who)
    return Paging(people, uncovered)


def escalation_targets(*, tenant_id: int, schedule_ids: list[int], next_layer: bool = False, at=None) -> list[int]:
    """The people on call now in these schedules of the tenant (see `escalation_paging`)."""
    return escalation_paging(tenant_id=tenant_id, schedule_ids=schedule_ids, next_layer=next_layer, at=at).user_ids
