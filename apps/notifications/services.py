"""Every write of the notifications app: fan-out (`notify_team`, events), reading state,
preferences, channels, templates, and the delivery outbox (send, retry, sweep, digest)."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.audit import config_change, config_deleted
from apps.core.choices import OrgKind, Role
from apps.core.crypto import PLACEHOLDER, encrypt
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant
from apps.core.tenancy import acting

from . import breaker, rendering
from .choices import PRIORITY_RANK, ChannelKind, DeliveryStatus, NotificationType, Priority
from .models import ChannelConfig, Delivery, Notification, NotificationTemplate, Preference, validate_type
from .planning import FanOut, Spec, backoff_seconds, fan_out
from .transports import Message, TransportError, get_transport
from .transports.apprise import check_url
from .transports.loop import send_loop

log = logging.getLogger(__name__)
QUEUE = "notifications"


def _organization(tenant):
    Organization = apps.get_model("tenants", "Organization")
    if isinstance(tenant, Organization):
        return tenant
    try:
        return Organization.objects.get(pk=int(tenant), kind=OrgKind.TENANT)
    except (Organization.DoesNotExist, TypeError, ValueError):
        raise ValidationError({"tenant_id": f"No tenant with id {tenant!r}."}) from None


def _members(tenant, **filters):
    Membership = apps.get_model("tenants", "Membership")
    return Membership.objects.filter(organization_id=tenant.pk, is_active=True, user__is_active=True, **filters)


def _spec(*, notification_type, title, message, priority, action_url, action_label, related_entity_type, related_entity_id, metadata) -> Spec:
    errors = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "A notification needs a title."
    elif len(title) > 300:
        errors["title"] = "A title has at most 300 characters."
    if priority not in Priority.values:
        errors["priority"] = f"Unknown priority {priority!r}; use one of {', '.join(Priority.values)}."
    try:
        validate_type(notification_type)
        if notification_type == "*":
            raise ValidationError("* is not a notification type.")
    except ValidationError as exc:
        errors["notification_type"] = exc.messages[0]
    if metadata is not None and not isinstance(metadata, dict):
        errors["metadata"] = "metadata must be a JSON object."
    if errors:
        raise ValidationError(errors)
    return Spec(
        notification_type=notification_type, title=title, message=message or "", priority=priority,
        action_url=action_url or "", action_label=action_label or "", related_entity_type=related_entity_type or "",
        related_entity_id=str(related_entity_id or ""), metadata=dict(metadata or {}),
    )


def _enqueue_after_commit(result: FanOut) -> None:
    ids = result.pending_ids
    if ids:
        transaction.on_commit(lambda: enqueue_deliveries(ids))


def notify_team(
    *,
    tenant,
    team_members: list[int] | None = None,
    role_filter: str | None = None,
    notification_type: str = NotificationType.SYSTEM_ALERT,
    title: str,
    message: str = "",
    priority: str = Priority.MEDIUM,
    action_url: str | None = None,
    action_label: str | None = None,
    related_entity_type: str | None = None,
    related_entity_id: str | None = None,
    metadata: dict | None = None,
    auto_send: bool = True,
    actor=None,
) -> Sequence[Notification]:
    """Notify a team of a tenant: exactly one of `team_members` (user ids, each an active member
    of the tenant — anyone else is refused) or `role_filter` (every active member with that
    role). Metadata gains `team_notification: true` and the role or member count. Rows are
    created in bulk; deliveries follow each member's preferences and are sent after commit
    (`auto_send=False`: in-app only). A member whose planning fails is skipped and logged."""
    tenant = _organization(tenant)
    if actor is not None:
        ctx = acting(actor)
        if not policy.allows(actor, "notify_team", Notification) or not ctx.can_write_tenant(tenant.pk):
            raise PermissionDenied("Your role does not allow notifying the team of this tenant.")
    has_members, has_role = team_members is not None, role_filter not in (None, "")
    if has_members == has_role:
        raise ValidationError("Give exactly one of team_members (a list of user ids) or role_filter (a role name).")
    metadata = dict(metadata or {})
    if has_role:
        if role_filter not in Role.values or role_filter == Role.CUSTOMER:
            raise ValidationError({"role_filter": f"Unknown role {role_filter!r}; use one of {', '.join(r for r in Role.values if r != Role.CUSTOMER)}."})
        user_ids = list(_members(tenant, role=role_filter).order_by("user_id").values_list("user_id", flat=True))
        metadata.update(team_notification=True, role_filter=role_filter, member_count=len(user_ids))
    else:
        try:
            wanted = list(dict.fromkeys(int(u) for u in team_members))
        except (TypeError, ValueError):
            raise ValidationError({"team_members": "A list of user ids."}) from None
        if not wanted:
            raise ValidationError({"team_members": "Name at least one team member."})
        found = set(_members(tenant, user_id__in=wanted).values_list("user_id", flat=True))
        foreign = [u for u in wanted if u not in found]
        if foreign:
            raise ValidationError({"team_members": f"Not active members of tenant {tenant.slug}: user id(s) {', '.join(map(str, foreign))}."})
        user_ids = wanted
        metadata.update(team_notification=True, member_count=len(user_ids))
    spec = _spec(
        notification_type=notification_type, title=title, message=message, priority=priority, action_url=action_url,
        action_label=action_label, related_entity_type=related_entity_type, related_entity_id=related_entity_id, metadata=metadata,
    )
    with transaction.atomic():
        result = fan_out(tenant=tenant, spec=spec, user_ids=user_ids, auto_send=auto_send)
        _publish_team_sent(tenant, spec, result, role_filter=role_filter if has_role else "", actor=actor)
        _enqueue_after_commit(result)
    return result.notifications


def _publish_team_sent(tenant, spec: Spec, result: FanOut, *, role_filter: str, actor) -> None:
    """The outbox row of a team notification (same transaction): one event, whatever the team size."""
    first = result.notifications[0].pk if result.notifications else None
    publish("notification.team_sent", tenant=tenant, actor=actor, payload={
        "id": first, "object_type": "notifications.notification", "title": f"Team notified: {spec.title}"[:300],
        "url": f"/admin/notifications/notification/{first}/change/" if first else "",
        "notification_type": spec.notification_type, "priority": spec.priority, "role_filter": role_filter,
        "recipients": len(result.notifications), "deliveries": result.delivery_count, "pending": len(result.pending_ids),
        "failed": len(result.failed),
    })


def notify_from_event(*, event) -> int:
    """Turn an event's `notify` block (docs/events.md) into notifications. Recipients outside
    the event's tenant (its staff, its customers, partners serving it) are dropped and logged.
    Idempotent: an event notifies each recipient at most once."""
    block = (event.payload or {}).get("notify")
    if not isinstance(block, dict) or event.tenant_id is None:
        return 0
    if Notification.objects.filter(event_id=event.pk).exists():
        return 0
    tenant = _organization(event.tenant_id)
    Membership = apps.get_model("tenants", "Membership")
    reach = Membership.objects.filter(is_active=True, user__is_active=True).filter(
        Q(organization_id=tenant.pk) | Q(organization__parent_id=tenant.pk) | Q(organization__kind=OrgKind.PARTNER, organization__served_tenants=tenant.pk)
    )
    user_ids: list[int] = []
    wanted = [u for u in block.get("user_ids") or [] if isinstance(u, int)]
    if wanted:
        user_ids += list(reach.filter(user_id__in=wanted).values_list("user_id", flat=True))
        dropped = set(wanted) - set(user_ids)
        if dropped:
            log.warning("event %s %s: users %s are not within tenant %s; not notified", event.name, event.pk, sorted(dropped), tenant.slug)
    roles = [r for r in block.get("roles") or [] if r in Role.values]
    if roles:
        user_ids += list(_members(tenant, role__in=roles).values_list("user_id", flat=True))
    if not user_ids:
        return 0
    payload = event.payload
    ntype = block.get("type") or event.name.replace(".", "_")
    try:
        validate_type(ntype)
    except ValidationError:
        ntype = NotificationType.SYSTEM_ALERT
    spec = _spec(
        notification_type=ntype, title=block.get("title") or payload.get("title") or event.name,
        message=block.get("message", ""), priority=block.get("priority") if block.get("priority") in Priority.values else Priority.MEDIUM,
        action_url=block.get("action_url") or payload.get("url", ""), action_label=block.get("action_label", ""),
        related_entity_type=payload.get("object_type", ""), related_entity_id=payload.get("id", ""),
        metadata={"event": event.name, "event_id": str(event.pk)},
    )
    emailed = {u for u in block.get("emailed_user_ids") or [] if isinstance(u, int)}
    result = fan_out(tenant=tenant, spec=spec, user_ids=sorted(set(user_ids)), event_id=event.pk, emailed=emailed)
    _enqueue_after_commit(result)
    return len(result.notifications)


# -- in-app state ---------------------------------------------------------------------------
def notification_mark_read(*, actor, notification: Notification) -> Notification:
    """Mark one of the actor's own notifications read (idempotent)."""
    if not Notification.objects.visible_to(actor, "read").filter(pk=notification.pk).exists():
        raise PermissionDenied("You can only mark your own notifications read.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at", "updated_at"])
    return notification


def notification_archive(*, actor, notification: Notification) -> Notification:
    """Archive one of the actor's own notifications (it is also marked read)."""
    if not Notification.objects.visible_to(actor, "read").filter(pk=notification.pk).exists():
        raise PermissionDenied("You can only archive your own notifications.")
    now = timezone.now()
    notification.archived_at = notification.archived_at or now
    notification.read_at = notification.read_at or now
    notification.save(update_fields=["archived_at", "read_at", "updated_at"])
    return notification


def notifications_mark_all_read(*, actor) -> int:
    """Mark every unread notification of the actor (in the organization they act for) read."""
    now = timezone.now()
    return Notification.objects.visible_to(actor, "read").filter(read_at__isnull=True).update(read_at=now, updated_at=now)


# -- preferences, channels, templates ------------------------------------------------------
def preference_save(instance: Preference | None = None, *, actor, **data) -> Preference:
    """Create or update a preference. Users write their own; tenant managers anyone's in their
    tenant (the row's user must be a member of it)."""
    pref = instance or Preference()
    for key, value in data.items():
        setattr(pref, key, value)
    if pref.user_id is None:
        pref.user_id = actor.pk if actor is not None else None
    if actor is not None:
        ctx = acting(actor)
        if instance is None and getattr(pref, "tenant_id", None) is None and ctx.tenant_id:
            pref.tenant_id = ctx.tenant_id  # customers' preferences live in their tenant
        if pref.user_id != actor.pk and not (ctx.is_platform or (ctx.kind == OrgKind.TENANT and ctx.role in (Role.OWNER, Role.ADMIN))):
            raise PermissionDenied("You can only change your own notification preferences.")
        if pref.user_id != actor.pk or ctx.kind == OrgKind.TENANT:
            assign_tenant(pref, actor=actor)
    if pref.tenant_id is not None and pref.user_id is not None and not _within_tenant(pref.tenant_id, pref.user_id):
        raise ValidationError({"user": "This user is not a member of the tenant (or of one of its customers)."})
    with transaction.atomic():
        pref.full_clean()
        pref.save()
    return pref


def _within_tenant(tenant_id: int, user_id: int) -> bool:
    Membership = apps.get_model("tenants", "Membership")
    return Membership.objects.filter(user_id=user_id, is_active=True).filter(
        Q(organization_id=tenant_id) | Q(organization__parent_id=tenant_id) | Q(organization__kind=OrgKind.PARTNER, organization__served_tenants=tenant_id)
    ).exists()


def _seal(channel: ChannelConfig, field: str, value) -> None:
    if value is None or value == PLACEHOLDER:
        return
    setattr(channel, field, encrypt(value) if value else "")


def channel_url_problem(kind: str, url: str) -> str | None:
    """Why `url` cannot serve a channel of `kind` (None when it can)."""
    if not url:
        return None
    if kind == ChannelKind.WEBHOOK:
        return None if url.startswith(("http://", "https://")) else "A webhook URL must start with http:// or https://."
    return check_url(kind, url)


def channel_save(instance: ChannelConfig | None = None, *, actor, url=None, signing_secret=None, **data) -> ChannelConfig:
    """Create or update a channel. The URL is checked (Apprise must understand it; Teams only
    through `workflow://`; webhooks http(s)) and stored sealed; the placeholder keeps it."""
    channel = instance or ChannelConfig()
    for key, value in data.items():
        setattr(channel, key, value)
    assign_tenant(channel, actor=actor)
    if url not in (None, PLACEHOLDER):
        url = url.strip()
        problem = channel_url_problem(channel.kind, url)
        if problem:
            raise ValidationError({"url": problem})
    _seal(channel, "url", url)
    _seal(channel, "signing_secret", signing_secret)
    if not channel.url:
        raise ValidationError({"url": "A channel needs a URL."})
    if channel.user_id is not None and not _members(_organization(channel.tenant_id), user_id=channel.user_id).exists():
        raise ValidationError({"user": "A personal channel's user must be a member of the tenant."})
    with transaction.atomic(), config_change(channel, actor=actor):
        channel.full_clean()
        if not channel.enabled:  # off means off: nothing queued for it is sent, its breaker starts afresh
            channel.consecutive_failures, channel.circuit_open_until = 0, None
        channel.save()
        if not channel.enabled:
            breaker.suppress_channel(channel)
    return channel


def channel_delete(instance: ChannelConfig, *, actor) -> None:
    if not policy.allows_object(actor, "delete", instance):
        raise PermissionDenied("Your role does not allow deleting this channel.")
    with transaction.atomic():
        config_deleted(instance, actor=actor)
        instance.delete()


def channel_test(*, actor, channel: ChannelConfig) -> tuple[bool, str]:
    """Send a test message to a channel now (synchronously) and record the outcome."""
    if actor is not None and not policy.allows_object(actor, "test", channel):
        raise PermissionDenied("Your role does not allow testing this channel.")
    sample = Notification(
        tenant_id=channel.tenant_id, notification_type=NotificationType.SYSTEM_ALERT, title="Test notification from opsportal",
        message=f"If you can read this, the channel {channel.name!r} works.", priority=Priority.LOW,
    )
    rendered = rendering.render(sample, channel.kind)
    message = Message(
        subject=rendered.subject, text=rendered.text, priority=Priority.LOW, url=channel.get_secret(),
        signing_secret=channel.get_secret("signing_secret"), payload={"type": "test", "title": sample.title, "message": sample.message},
    )
    try:
        get_transport(channel.kind).send(message)
        ok, detail = True, "Test message sent."
    except TransportError as exc:
        ok, detail = False, redact(str(exc), message.url, message.signing_secret)
    ChannelConfig.objects.filter(pk=channel.pk).update(last_tested_at=timezone.now(), last_test_ok=ok, last_error="" if ok else detail[:2000])
    return ok, detail


def template_preview(*, template: NotificationTemplate) -> rendering.Rendered:
    """Render a template against a sample notification (admin preview)."""
    sample = Notification(
        tenant_id=template.tenant_id, notification_type=template.notification_type if template.notification_type != "*" else "system_alert",
        title="Disk almost full on db-1", message="92% used on /var/lib/postgresql.\nFree space or grow the volume.",
        priority=Priority.HIGH, action_url="/admin/", action_label="Open the portal",
    )
    return rendering.render(sample, template.channel or ChannelKind.EMAIL, template=template)


# -- the outbox -----------------------------------------------------------------------------
def enqueue_deliveries(ids: list[int]) -> bool:
    """Put deliveries on the `notifications` queue in batches. A broker outage is logged, not
    raised: the rows are pending and the sweeper enqueues them again."""
    from .tasks import deliver_task

    size = settings.NOTIFICATIONS_DELIVERY_BATCH
    try:
        for i in range(0, len(ids), size):
            deliver_task.apply_async(args=[ids[i : i + size]], queue=QUEUE)
    except Exception as exc:
        log.warning("%d deliveries not enqueued (%r); the sweeper will send them", len(ids), exc)
        return False
    return True


# What a delivery task reads of its rows: the columns the send and the outcome need, not the
# timestamps and texts (model instances with deferred fields; nothing reads the others).
CLAIMED = ("id", "tenant_id", "notification_id", "recipient_id", "kind", "channel_id", "status", "attempts", "digest_id")
CHANNEL = ("id", "tenant_id", "kind", "url", "signing_secret", "enabled", "consecutive_failures", "circuit_open_until")
PAYLOAD = ("id", "notification_type", "title", "message", "priority", "action_url", "action_label", "related_entity_type",
           "related_entity_id", "metadata", "created_at")


def _claim(ids, now) -> list[Delivery]:
    """Claim the given deliveries that are pending and due (→ sending, one attempt counted) and
    return them. Rows locked by another worker or no longer pending are skipped, so two tasks
    racing on the same ids send each row once. PostgreSQL: one UPDATE … RETURNING."""
    ids = list(ids)
    if not ids:
        return []
    if connection.vendor != "postgresql":
        with transaction.atomic():
            claimed = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
                .values_list("pk", flat=True)
            )
            Delivery.objects.filter(pk__in=claimed).update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
        return list(Delivery.objects.filter(pk__in=claimed).only(*CLAIMED))
    meta, qn = Delivery._meta, connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if f.attname in CLAIMED]  # from_db wants the model's order
    with connection.cursor() as cursor:
        cursor.execute(
            # rows locked (and their status checked under the lock) first, then updated by primary key:
            # a status filter out here lets stale statistics pick a nested loop over every pending row
            f"WITH picked AS MATERIALIZED (SELECT id FROM {qn(meta.db_table)} WHERE id = ANY(%s) AND status = %s AND next_attempt_at <= %s "
            f"ORDER BY id FOR UPDATE SKIP LOCKED) "
            f"UPDATE {qn(meta.db_table)} AS d SET status = %s, claimed_at = %s, attempts = d.attempts + 1 FROM picked "
            f"WHERE d.id = picked.id RETURNING {', '.join('d.' + qn(f.column) for f in fields)}",
            [ids, DeliveryStatus.PENDING, now, DeliveryStatus.SENDING, now],
        )
        found = cursor.fetchall()
    names = [f.attname for f in fields]
    return [Delivery.from_db(connection.alias, names, row) for row in found]


def _attach(rows: list[Delivery]) -> dict[int, dict]:
    """Give claimed rows their channel (one query for the batch; a channel shared by many rows is
    one object) and, where a transport renders, their notification and recipient. Rows whose
    transport posts the payload only (webhooks) get no notification object: their notifications'
    payloads are read as values, one per notification (returned by id)."""
    renders = {r.pk: _renders(r.kind) for r in rows}
    rendered_ids = {r.notification_id for r in rows if r.notification_id and renders[r.pk]}
    plain_ids = {r.notification_id for r in rows if r.notification_id and not renders[r.pk]} - rendered_ids
    notifications = Notification.objects.in_bulk(rendered_ids) if rendered_ids else {}
    payloads = {row[0]: _payload_of(*row) for row in Notification.objects.filter(pk__in=plain_ids).values_list(*PAYLOAD)} if plain_ids else {}
    channel_ids = {r.channel_id for r in rows if r.channel_id}
    channels = ChannelConfig.objects.only(*CHANNEL).in_bulk(channel_ids) if channel_ids else {}
    wanted = {r.recipient_id for r in rows if r.recipient_id and renders[r.pk]}
    recipients = get_user_model().objects.in_bulk(wanted) if wanted else {}
    for row in rows:
        if row.notification_id in notifications:
            row.notification = notifications[row.notification_id]
        if row.channel_id:
            row.channel = channels[row.channel_id]
        if row.recipient_id in recipients:
            row.recipient = recipients[row.recipient_id]
    return payloads


def _renders(kind: str) -> bool:
    try:
        return get_transport(kind).renders
    except TransportError:
        return True  # no transport: the send fails permanently, as before


def _secrets(channel: ChannelConfig | None, cache: dict) -> tuple[str, str]:
    if channel is None:
        return "", ""
    if channel.pk not in cache:
        cache[channel.pk] = (channel.get_secret(), channel.get_secret("signing_secret"))
    return cache[channel.pk]


def build_message(delivery: Delivery, template_cache: dict | None = None, secret_cache: dict | None = None,
                  payloads: dict | None = None) -> Message:
    """Render a delivery for its channel (digests list their items). A transport that posts only
    the payload (webhooks) skips rendering and takes its notification's payload from `payloads`
    (read by `_attach`) when given; a notification on the built-in templates is rendered once per
    kind in a batch (`template_cache` also holds those renderings)."""
    kind, renders = delivery.kind, _renders(delivery.kind)
    if delivery.notification_id is None:  # a digest
        items = [i.notification for i in delivery.items.select_related("notification").order_by("created_at")]
        rendered = rendering.render(None, kind, items=items, recipient=delivery.recipient) if renders else None
        payload = {"type": "digest", "count": len(items), "items": [_payload(n) for n in items]}
        priority = max((n.priority for n in items), key=PRIORITY_RANK.__getitem__, default=Priority.LOW)
    elif not renders and payloads is not None and delivery.notification_id in payloads:
        rendered, payload = None, payloads[delivery.notification_id]
        priority = payload["priority"]
    else:
        notification, rendered = delivery.notification, None
        if renders:
            template = rendering.find_template(delivery.tenant_id, notification.notification_type, kind, template_cache)
            key = ("rendered", notification.pk, kind)  # built-in templates do not use the recipient
            if template is None and template_cache is not None and key in template_cache:
                rendered = template_cache[key]
            else:
                rendered = rendering.render(notification, kind, template=template, recipient=delivery.recipient)
                if template is None and template_cache is not None:
                    template_cache[key] = rendered
        payload, priority = _payload(notification), notification.priority
    url, signing_secret = _secrets(delivery.channel, {} if secret_cache is None else secret_cache)
    return Message(
        subject=rendered.subject if rendered else "", text=rendered.text if rendered else "", html=rendered.html if rendered else "",
        priority=priority, to_email=(getattr(delivery.recipient, "email", "") or "") if renders else "",
        url=url, signing_secret=signing_secret,
        payload={**payload, "delivery_id": delivery.pk, "tenant_id": delivery.tenant_id},
    )


def _payload(n: Notification) -> dict:
    return _payload_of(*(getattr(n, name) for name in PAYLOAD))


def _payload_of(pk, notification_type, title, message, priority, action_url, action_label, related_entity_type, related_entity_id,
                metadata, created_at) -> dict:
    """What a webhook (or a digest's item) says about one notification; arguments in PAYLOAD order."""
    return {
        "id": pk, "type": notification_type, "title": title, "message": message, "priority": priority,
        "action_url": rendering.absolute(action_url), "action_label": action_label,
        "related_entity_type": related_entity_type, "related_entity_id": related_entity_id,
        "metadata": metadata, "created_at": created_at.isoformat() if created_at else None,
    }


def redact(text: str, *secrets: str | None) -> str:
    """Take a channel's secrets out of an error text: the URL and its path, query values and
    credentials (and, for non-HTTP Apprise URLs, the token-bearing host part). Transport errors
    quote the URL they failed on, and they end up in rows the API and the admin show."""
    pieces: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        parts = urlsplit(secret)
        pieces.update({secret, parts.path, parts.query, parts.username or "", parts.password or ""})
        pieces.update(value for _, value in parse_qsl(parts.query))
        if parts.scheme not in ("http", "https"):
            pieces.add(parts.netloc)
    for piece in sorted((p for p in pieces if len(p) >= 4 and p != "/"), key=len, reverse=True):
        text = text.replace(piece, "[redacted]")
    return text


def _record_failure(row: Delivery, exc: Exception, now, *, secrets: tuple = ()) -> None:
    permanent = isinstance(exc, TransportError) and exc.permanent
    row.last_error = redact(str(exc), *secrets)[:2000]
    if permanent or row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        row.status = DeliveryStatus.FAILED
    else:
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))


async def _send_one(row, message):
    try:
        await get_transport(row.kind).send_async(message)
    except Exception as exc:  # reported per row; one failure never stops the batch
        return exc
    return None


async def _send_group(items: list, streak: int) -> list:
    """Send one channel's deliveries in order within NOTIFICATIONS_CHANNEL_BUDGET_SECONDS (each
    send's timeout capped by what is left); stop when the budget is spent or the breaker's failure
    count is reached. Returns (row, exception | None | NOT_SENT)."""
    deadline = time.monotonic() + settings.NOTIFICATIONS_CHANNEL_BUDGET_SECONDS
    results = []
    for i, (row, message) in enumerate(items):
        left = deadline - time.monotonic()
        if left <= 0 or streak >= settings.NOTIFICATIONS_BREAKER_FAILURES:
            results += [(r, NOT_SENT) for r, _ in items[i:]]
            break
        message.timeout = left
        exc = await _send_one(row, message)
        results.append((row, exc))
        streak = 0 if exc is None else streak + 1
    return results


NOT_SENT = object()


def _send_all(ready: list, probes: set[int]) -> list:
    """Send rendered deliveries on the process's send loop: a channel's in order (its budget and
    breaker), up to NOTIFICATIONS_SEND_CONCURRENCY channels (and channel-less e-mails) at once.
    Nothing on the loop touches the database."""
    groups: dict = defaultdict(list)
    for row, message in ready:
        groups[("channel", row.channel_id) if row.channel_id else ("row", row.pk)].append((row, message))
    jobs = []
    for items in groups.values():
        channel = items[0][0].channel
        jobs.append((items, 0 if channel is None or channel.pk in probes else channel.consecutive_failures))

    async def send():
        pending, results = iter(jobs), []

        async def lane():  # lanes take the next channel as they free up (one thread: no lock)
            for items, streak in pending:
                results.extend(await _send_group(items, streak))

        await asyncio.gather(*(lane() for _ in range(min(settings.NOTIFICATIONS_SEND_CONCURRENCY, len(jobs)))))
        return results

    return send_loop().run(send()) if jobs else []


def deliveries_send(*, delivery_ids: list[int], now=None) -> dict[str, int]:
    """Send the given deliveries that are pending and due. Each row is claimed first (so the
    sweeper and a late task never send it twice), then gated: a disabled channel's rows are
    suppressed, an open breaker's deferred (`breaker`); the rest are sent within each channel's
    time budget. Transient failures go back to pending with exponential backoff, permanent ones
    (and the last attempt) fail."""
    now = now or timezone.now()
    rows = _claim(delivery_ids, now)
    if not rows:
        return {"sent": 0, "failed": 0, "retry": 0}
    payloads = _attach(rows)
    gated = breaker.gate(rows, now)
    cache: dict = {}
    secret_cache: dict = {}
    ready = []
    for row in gated.send:  # rendering reads templates from the database: here, not on the send loop
        try:
            ready.append((row, build_message(row, cache, secret_cache, payloads)))
        except Exception as exc:
            log.error("delivery %s could not be rendered: %r", row.pk, exc)
            _record_failure(row, exc, now)
    messages = {row.pk: message for row, message in ready}
    outcomes: dict[int, list[bool]] = defaultdict(list)
    not_sent = []
    for row, exc in _send_all(ready, gated.probes):
        if exc is NOT_SENT:
            not_sent.append(row)
            continue
        if row.channel_id:
            outcomes[row.channel_id].append(exc is None)
        if exc is None:
            row.status = DeliveryStatus.SENT
            continue
        message = messages[row.pk]
        secrets = (message.url, message.signing_secret)
        if not isinstance(exc, TransportError):
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("delivery %s failed unexpectedly:\n%s", row.pk, redact(text, *secrets))
        _record_failure(row, exc, now, secrets=secrets)
    channels = {row.channel_id: row.channel for row in gated.send if row.channel_id}
    closed = [cid for cid, oks in outcomes.items() if breaker.record(channels[cid], oks, now, probe=cid in gated.probes)]
    budget_until = now + timedelta(seconds=settings.NOTIFICATIONS_BACKOFF_BASE)
    deferred = [*gated.deferred, *(
        (row, channel.circuit_open_until, breaker.open_reason(channel)) if (channel := channels.get(row.channel_id)) and channel.circuit_open_until
        else (row, budget_until, "Deferred: the channel used up its time budget in this batch.") for row in not_sent
    )]
    breaker.hold(gated.suppressed, deferred)
    skipped = {r.pk for r in not_sent}
    attempted = [r for r in gated.send if r.pk not in skipped]
    sent = [r.pk for r in attempted if r.status == DeliveryStatus.SENT]
    if sent:  # the common case in one statement; failures row by row
        Delivery.objects.filter(pk__in=sent).update(status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error="")
    failed = [r for r in attempted if r.status != DeliveryStatus.SENT]
    if failed:
        Delivery.objects.bulk_update(failed, ["status", "last_error", "next_attempt_at"])
    released = [pk for cid in closed for pk in breaker.release(channels[cid])]
    if released:  # a probe succeeded: what the open breaker held goes now
        enqueue_deliveries(released)
    counts = defaultdict(int)
    for row in attempted:
        counts[{DeliveryStatus.SENT: "sent", DeliveryStatus.FAILED: "failed"}.get(row.status, "retry")] += 1
    result = {"sent": counts["sent"], "failed": counts["failed"], "retry": counts["retry"]}
    for key, n in (("suppressed", len(gated.suppressed)), ("deferred", len(deferred))):
        if n:
            result[key] = n
    return result


def deliveries_sweep(*, now=None, limit: int = 5000) -> int:
    """Beat: free deliveries claimed by a worker that died, then enqueue pending rows that are
    due — first attempts older than NOTIFICATIONS_SWEEP_AFTER (lost by a broker outage) and
    retries whose backoff has passed. Returns how many were enqueued."""
    now = now or timezone.now()
    Delivery.objects.filter(
        status=DeliveryStatus.SENDING, claimed_at__lt=now - timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT)
    ).update(status=DeliveryStatus.PENDING, next_attempt_at=now)
    grace = now - timedelta(seconds=settings.NOTIFICATIONS_SWEEP_AFTER)
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(Q(attempts=0, next_attempt_at__lte=grace) | Q(attempts__gt=0, next_attempt_at__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if due:
        enqueue_deliveries(due)
    return len(due)


def digests_send(*, now=None) -> int:
    """Beat: gather batched deliveries whose digest time has come into one digest delivery per
    recipient and channel, and send those. Returns the number of digests created."""
    now = now or timezone.now()
    created: list[int] = []
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.BATCHED, next_attempt_at__lte=now)
            .order_by("created_at")
            .values("pk", "tenant_id", "recipient_id", "kind", "channel_id")
        )
        groups: dict[tuple, list[int]] = defaultdict(list)
        for r in rows:
            groups[(r["tenant_id"], r["recipient_id"], r["kind"], r["channel_id"])].append(r["pk"])
        for (tenant_id, recipient_id, kind, channel_id), ids in groups.items():
            digest = Delivery.objects.create(tenant_id=tenant_id, recipient_id=recipient_id, kind=kind, channel_id=channel_id, next_attempt_at=now)
            Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.DIGESTED, digest=digest, sent_at=None)
            created.append(digest.pk)
        if created:
            transaction.on_commit(lambda: enqueue_deliveries(created))
    return len(created)


def delivery_retry(*, actor, delivery_ids) -> int:
    """Put failed (or suppressed) deliveries back to pending and enqueue them (admin action)."""
    qs = Delivery.objects.visible_to(actor, "change") if actor is not None else Delivery.objects.all()
    ids = list(qs.filter(pk__in=list(delivery_ids), status__in=[DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED]).values_list("pk", flat=True))
    with transaction.atomic():
        Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, attempts=0, reason="", next_attempt_at=timezone.now(), last_error="")
        if ids:
            transaction.on_commit(lambda: enqueue_deliveries(ids))
    return len(ids)


def preference_delete(instance: Preference, *, actor) -> None:
    """Delete a preference (the user falls back to their `*` row or the defaults)."""
    if actor is not None and not policy.allows_object(actor, "delete", instance):
        raise PermissionDenied("You cannot delete this preference.")
    instance.delete()
