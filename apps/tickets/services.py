"""Ticket services: every write and every rule of the tickets app (routing, visibility checks,
numbers, SLA clocks, auto-assignment, escalation, attachments). Entry points call these."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.choices import OrgKind, Role
from apps.core.events import publish, write_events
from apps.core.policy import policy
from apps.core.tenancy import acting
from apps.tenants.models import Membership, Organization

from .choices import (
    CLOCK_RUNNING_STATUSES,
    DONE_STATUSES,
    OPEN_STATUSES,
    ROUTES,
    TRANSITIONS,
    ActorType,
    AssignmentMode,
    TicketPriority,
    TicketStatus,
    TimelineKind,
)
from .config import TenantConfig, tenant_config
from .models import STAFF_WORKERS, Ticket, TicketAgent, TicketAttachment, TicketEvent, TicketMessage
from .numbers import new_ticket_number
from .selectors import assignment_candidates
from .sla import business_seconds_between, sla_clock, sla_targets
from .writes import BatchedWrites

mimetypes.add_type("text/plain", ".log")  # diagnostics.log is the most common attachment
NUMBER_ATTEMPTS = 12
ASSIGN_LOCK_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, tenant_id) serializes auto-assignment per tenant


# -- helpers -------------------------------------------------------------------------------
def actor_type(actor) -> str:
    """The actor type of the acting user's membership (system = platform)."""
    if actor is None:
        return ActorType.PLATFORM
    ctx = acting(actor)
    if ctx.is_platform:
        return ActorType.PLATFORM
    kinds = {OrgKind.TENANT: ActorType.TENANT, OrgKind.PARTNER: ActorType.PARTNER, OrgKind.CUSTOMER: ActorType.CUSTOMER}
    if ctx.kind not in kinds:
        raise PermissionDenied("You need a membership in an organization to work with tickets.")
    return kinds[ctx.kind]


def ticket_payload(ticket: Ticket, **extra) -> dict:
    """Payload keys of every ticket.* event (documented in docs/tickets.md)."""
    def iso(v):
        return v.isoformat() if isinstance(v, datetime) else v

    data = {
        "id": ticket.pk,
        "object_type": "tickets.ticket",
        "title": f"{ticket.number} {ticket.subject}",
        "url": ticket.get_admin_url(),
        "number": ticket.number,
        "subject": ticket.subject,
        "tenant": ticket.tenant_id,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "customer_id": ticket.customer_id,
        "partner_id": ticket.partner_id,
        "origin_type": ticket.origin_type,
        "target_type": ticket.target_type,
        "escalation_level": ticket.escalation_level,
        "created_by_id": ticket.created_by_id,
        "created_at": iso(ticket.created_at),
        "first_response_due_at": iso(ticket.first_response_due_at),
        "resolution_due_at": iso(ticket.resolution_due_at),
    }
    data.update(extra)
    return data


def _notify(type_: str, priority: str, *, user_ids=(), roles=(), title: str = "", message: str = "", ticket=None) -> dict:
    block = {"type": type_, "priority": priority, "user_ids": sorted({u for u in user_ids if u})}
    if roles:
        block["roles"] = list(roles)
    if title:
        block["title"] = title
    if message:
        block["message"] = message
    if ticket is not None:
        block["action_url"] = ticket.get_admin_url()
        block["action_label"] = "Open ticket"
    return block


def _timeline(ticket, kind, *, actor=None, text="", **data) -> TicketEvent:
    return TicketEvent.objects.create(ticket=ticket, kind=kind, actor=actor if actor is not None else None, text=text[:300], data=data)


def _require(actor, action: str, ticket: Ticket) -> None:
    if actor is None:
        return
    if not Ticket.objects.visible_to(actor, action).filter(pk=ticket.pk).exists():
        if Ticket.objects.visible_to(actor, "view").filter(pk=ticket.pk).exists():
            raise PermissionDenied(f"Your role does not allow '{action}' on this ticket.")
        raise PermissionDenied("Ticket not found.")


def _lock(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().select_related("tenant").get(pk=ticket.pk)


def _apply_clock(ticket: Ticket, conf: TenantConfig | None = None) -> None:
    """Recompute due times with the current policy (creation, priority change, pause end)."""
    targets = conf.sla_targets(ticket.priority) if conf is not None else sla_targets(ticket.tenant_id, ticket.priority)
    clock = sla_clock(ticket, targets)
    ticket.sla_policy_id = targets.policy_id
    ticket.first_response_due_at = clock.first_response_due_at
    ticket.resolution_due_at = clock.resolution_due_at
    ticket.sla_warn_at = clock.warn_at
    now = timezone.now()
    # flags follow the recomputed times: a later due (lower priority) lifts them, the sweep re-sets
    if ticket.sla_warn_at is None or ticket.sla_warn_at > now:
        ticket.sla_at_risk = False
    if ticket.first_responded_at is None and (ticket.first_response_due_at is None or ticket.first_response_due_at > now):
        ticket.first_response_breached = False
    if ticket.resolution_due_at is None or ticket.resolution_due_at > now:
        ticket.resolution_breached = False
    if not ticket.sla_breached:
        ticket.sla_breached_at = None


def _pause_ended(ticket: Ticket, since: datetime | None, now: datetime) -> None:
    """Add the working time since `since` to the paused total and recompute due times."""
    if since is not None:
        targets = sla_targets(ticket.tenant_id, ticket.priority)
        ticket.sla_paused_seconds += business_seconds_between(since, now, targets.calendar)
    ticket.sla_paused_at = None
    _apply_clock(ticket)


def _resolve_tenant(ctx, origin: str, tenant) -> int:
    """The id of the tenant a new ticket belongs to: the actor's own for customers and tenant
    staff (no query), one the partner serves, or the one platform staff name."""
    if isinstance(tenant, (int, str)) and tenant != "":
        found = Organization.objects.filter(kind=OrgKind.TENANT).filter(**({"pk": tenant} if str(tenant).isdigit() else {"slug": tenant})).first()
        if found is None:
            raise ValidationError({"tenant": f"No tenant {tenant!r}."})
        tenant = found
    if origin in (ActorType.CUSTOMER, ActorType.TENANT):
        if tenant is not None and tenant.pk != ctx.tenant_id:
            raise PermissionDenied("You can open tickets only within your own tenant.")
        return ctx.tenant_id
    if origin == ActorType.PARTNER:
        served = ctx.served_tenant_ids
        if tenant is None:
            if len(served) != 1:
                raise ValidationError({"tenant": "Name the tenant this ticket is about (you serve several)."})
            return next(iter(served))
        if tenant.pk not in served:
            raise PermissionDenied("You do not serve that tenant.")
        return tenant.pk
    if tenant is None:
        raise ValidationError({"tenant": "Name the tenant this ticket is about."})
    return tenant.pk


def _resolve_partner(tenant_id: int, partner, *, tenant_slug: str) -> Organization:
    serving = Organization.objects.filter(kind=OrgKind.PARTNER, served_tenants=tenant_id)
    if partner is None:
        rows = list(serving[:2])
        if len(rows) != 1:
            raise ValidationError({"partner": "Name the partner (slug) to route this ticket to." if rows else "No partner serves this tenant."})
        return rows[0]
    key = partner.pk if isinstance(partner, Organization) else partner
    found = serving.filter(**({"pk": key} if str(key).isdigit() else {"slug": key})).first()
    if found is None:
        raise ValidationError({"partner": f"Partner {partner!s} does not serve tenant {tenant_slug}."})
    return found


def validate_route(origin: str, target: str) -> None:
    """The routing matrix; a refused pair is a 400 naming the allowed targets."""
    allowed = ROUTES.get(origin, ())
    if target not in allowed:
        raise ValidationError(
            {"target_type": f"A {origin} cannot route a ticket to {target!s}. Allowed targets for a {origin}: {', '.join(allowed)}."}
        )


# -- attachments ---------------------------------------------------------------------------
def validate_attachment(upload) -> str:
    """Size and type limits (settings TICKETS_ATTACHMENT_MAX_BYTES / _TYPES); returns the type."""
    name = getattr(upload, "name", "") or ""
    size = getattr(upload, "size", None) or 0
    limit = settings.TICKETS_ATTACHMENT_MAX_BYTES
    if size > limit:
        raise ValidationError({"attachments": f"{name} is {size} bytes; the limit is {limit} bytes."})
    if size == 0:
        raise ValidationError({"attachments": f"{name} is empty."})
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    allowed = settings.TICKETS_ATTACHMENT_TYPES
    if guessed not in allowed:
        raise ValidationError({"attachments": f"{name}: type {guessed} is not allowed. Allowed types: {', '.join(sorted(allowed))}."})
    return guessed


def _store_attachments(ticket, files, *, actor, message=None, writes: BatchedWrites | None = None) -> list[TicketAttachment]:
    stored = []
    timeline = writes.timeline if writes is not None else _timeline
    for upload in files or ():
        content_type = validate_attachment(upload)
        name = (upload.name or "file").rsplit("/", 1)[-1][:200]
        att = TicketAttachment(
            ticket=ticket, message=message, filename=name, content_type=content_type, size=upload.size, uploaded_by=actor
        )
        att.file.save(name, upload, save=False)
        att.save()
        stored.append(att)
        timeline(ticket, TimelineKind.ATTACHMENT, actor=actor, text=name, attachment_id=att.pk, internal=bool(message and message.is_internal))
    return stored


def ticket_attach(ticket: Ticket, *, actor, file) -> TicketAttachment:
    """Attach one file to a ticket (not to a message)."""
    _require(actor, "attach", ticket)
    with transaction.atomic():
        return _store_attachments(ticket, [file], actor=actor)[0]


# -- create --------------------------------------------------------------------------------
@dataclass
class TicketCreation:
    """What `ticket_create` wrote besides the ticket, and the names its answer shows, so the API
    answers from memory instead of reading the rows back (`ticket.creation`)."""

    message: TicketMessage
    attachments: list[TicketAttachment] = field(default_factory=list)
    timeline: list[TicketEvent] = field(default_factory=list)
    tenant_slug: str = ""
    customer_slug: str | None = None
    partner_slug: str | None = None
    assignee_username: str | None = None


def ticket_create(
    *,
    actor,
    subject: str,
    message: str,
    priority: str = TicketPriority.NORMAL,
    target_type: str | None = None,
    tenant=None,
    partner=None,
    attachments=(),
    metadata: dict | None = None,
    tags: list | None = None,
    sla_started_at: datetime | None = None,
) -> Ticket:
    """Open a ticket with its first message. Origin comes from the actor's membership; the
    target must be allowed by the routing matrix. Publishes ticket.created (and
    ticket.escalated_to_partner when routed to a partner); auto-assigns per tenant setting.
    `sla_started_at` starts the SLA clock earlier (an alert's first_seen), never later than now.
    The ticket returned carries `creation` (TicketCreation).

    The number is random; the ticket's INSERT is the transaction's first write, so a number
    another ticket took (the unique constraint) rolls back nothing else and the whole
    transaction is simply run again with a new number, without a savepoint per attempt."""
    ctx = acting(actor) if actor is not None else None
    if actor is not None and not policy.allows(actor, "add", Ticket):
        raise PermissionDenied("Your role does not allow opening tickets.")
    origin = actor_type(actor)
    target = target_type or ROUTES[origin][0]
    validate_route(origin, target)
    if not (message or "").strip():
        raise ValidationError({"message": "Describe the problem in the first message."})
    for upload in attachments or ():
        validate_attachment(upload)
    request = dict(subject=subject, message=message, priority=priority, tenant=tenant, partner=partner, attachments=attachments,
                   metadata=metadata, tags=tags, sla_started_at=sla_started_at)
    for _ in range(NUMBER_ATTEMPTS):
        try:
            with transaction.atomic():
                return _create(ctx, actor=actor, origin=origin, target=target, **request)
        except IntegrityError as exc:
            if "number" not in str(exc):
                raise
    raise RuntimeError("could not find a free ticket number")  # ~impossible: 6.6e11 codes


# Foreign keys of a new ticket all come from rows just read (the tenant configuration, the
# actor and their membership, the partner query), so full_clean need not query each again.
_CREATE_CLEAN_EXCLUDE = ["number", "tenant", "customer", "partner", "created_by", "assignee", "sla_policy"]


def _create(ctx, *, actor, origin, target, subject, message, priority, tenant, partner, attachments, metadata, tags, sla_started_at) -> Ticket:
    tenant_id = _resolve_tenant(ctx, origin, tenant)
    conf = tenant_config(tenant_id)
    partner_row = None
    if origin == ActorType.PARTNER:
        partner_row = Organization.objects.get(pk=ctx.organization_id)
    elif target == ActorType.PARTNER:
        partner_row = _resolve_partner(tenant_id, partner, tenant_slug=conf.slug)
    now = timezone.now()
    ticket = Ticket(
        tenant_id=tenant_id,
        subject=(subject or "").strip(),
        priority=priority,
        origin_type=origin,
        target_type=target,
        customer_id=ctx.organization_id if origin == ActorType.CUSTOMER else None,
        partner=partner_row,
        created_by=actor,
        tags=list(tags or []),
        metadata=dict(metadata or {}),
        created_at=now,
        sla_started_at=min(sla_started_at, now) if sla_started_at else now,
    )
    _apply_clock(ticket, conf)
    # the check constraint (escalation level) is Ticket.clean's too, and the database's
    ticket.full_clean(exclude=_CREATE_CLEAN_EXCLUDE, validate_unique=False, validate_constraints=False)
    ticket.number = new_ticket_number()
    ticket.save(force_insert=True)
    first = TicketMessage.objects.create(ticket=ticket, author=actor, author_type=origin, body=message, created_at=now)
    writes = BatchedWrites()
    stored = _store_attachments(ticket, attachments, actor=actor, message=first, writes=writes)
    writes.timeline(ticket, TimelineKind.CREATED, actor=actor, text=f"Opened by {origin} for {target}", origin=origin, target=target)
    assignee_username = _auto_assign(ticket, conf, writes) if target == ActorType.TENANT else None
    crit = ticket.priority in (TicketPriority.URGENT, TicketPriority.CRITICAL)
    writes.publish(
        "ticket.created",
        ticket,
        actor=actor,
        payload=ticket_payload(
            ticket,
            notify=_notify(
                "ticket_created", "urgent" if crit else "medium",
                user_ids=[ticket.assignee_id], roles=[] if ticket.assignee_id else [Role.SUPPORT_AGENT],
                title=f"New ticket {ticket.number}: {ticket.subject}", ticket=ticket,
            ),
        ),
    )
    if partner_row is not None and target == ActorType.PARTNER:
        _publish_to_partner(ticket, actor=actor, reason="routed to partner", writes=writes)
    writes.flush()
    ticket.creation = TicketCreation(
        message=first, attachments=stored, timeline=writes.timeline_rows, tenant_slug=conf.slug,
        customer_slug=ctx.organization_slug if ticket.customer_id else None,
        partner_slug=partner_row.slug if partner_row is not None else None, assignee_username=assignee_username,
    )
    return ticket


def _publish_to_partner(ticket, *, actor, reason: str, writes: BatchedWrites | None = None) -> None:
    partner_staff = Membership.objects.filter(
        organization_id=ticket.partner_id, is_active=True, role__in=list(STAFF_WORKERS)
    ).values_list("user_id", flat=True)
    payload = ticket_payload(
        ticket, reason=reason,
        notify=_notify("ticket_escalated", "high", user_ids=list(partner_staff),
                       title=f"{ticket.number} was escalated to your organization", message=reason, ticket=ticket),
    )
    if writes is not None:
        writes.publish("ticket.escalated_to_partner", ticket, actor=actor, payload=payload)
    else:
        publish("ticket.escalated_to_partner", tenant=ticket.tenant_id, actor=actor, payload=payload)


# -- assignment ----------------------------------------------------------------------------
def tenant_ticket_settings(tenant) -> dict:
    """The tenant's assignment settings (`settings["tickets"]`); `tenant` is an Organization or its id."""
    conf = tenant_config(getattr(tenant, "pk", tenant))
    return {"assignment": conf.assignment, "only_available": conf.only_available_agents}


def pick_agent(tenant, mode: str, *, only_available: bool) -> int | None:
    """The next agent for a tenant: active support agents; least-loaded = fewest open tickets,
    ties to whoever was assigned longest ago (then lowest id); round-robin = assigned longest
    ago. Callers hold the tenant's assignment lock."""
    picked = _pick(getattr(tenant, "pk", tenant), mode, only_available=only_available)
    return picked[0] if picked else None


def _pick(tenant_id: int, mode: str, *, only_available: bool) -> tuple[int, str] | None:
    least_loaded = mode != AssignmentMode.ROUND_ROBIN
    rows = assignment_candidates(tenant_id=tenant_id, with_loads=least_loaded)
    if only_available:
        rows = [r for r in rows if r[2] is None or r[2]]  # no profile yet counts as available
    if not rows:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)

    def last(row):  # SQLite hands raw queries naive UTC datetimes
        value = row[3]
        return epoch if value is None else value if timezone.is_aware(value) else value.replace(tzinfo=UTC)

    if least_loaded:
        best = min(rows, key=lambda r: (r[4], last(r), r[0]))
    else:
        best = min(rows, key=lambda r: (last(r), r[0]))
    return best[0], best[1]


def _assignment_lock(tenant_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ASSIGN_LOCK_NAMESPACE, tenant_id])


def _auto_assign(ticket: Ticket, conf: TenantConfig, writes: BatchedWrites) -> str | None:
    """Assign a new ticket per the tenant's mode; returns the assignee's username. The lock is
    taken as late as possible (the ticket and its message are written already): it is held to
    the commit, so the next creator counts this ticket."""
    if conf.assignment == AssignmentMode.OFF or ticket.assignee_id:
        return None
    _assignment_lock(ticket.tenant_id)
    picked = _pick(ticket.tenant_id, conf.assignment, only_available=conf.only_available_agents)
    if picked is None:
        return None
    _set_assignee(ticket, picked[0], actor=None, how=conf.assignment, writes=writes)
    return picked[1]


def _set_assignee(ticket: Ticket, user_id: int | None, *, actor, how: str, writes: BatchedWrites) -> None:
    previous = ticket.assignee_id
    now = timezone.now()
    ticket.assignee_id = user_id
    ticket.updated_at = now
    Ticket.objects.filter(pk=ticket.pk).update(assignee_id=user_id, updated_at=now)
    if user_id:
        TicketAgent.objects.bulk_create(
            [TicketAgent(tenant_id=ticket.tenant_id, user_id=user_id, last_assigned_at=now)],
            update_conflicts=True, unique_fields=["tenant", "user"], update_fields=["last_assigned_at", "updated_at"],
        )
    verb = "Reassigned" if previous else "Assigned"
    writes.timeline(ticket, TimelineKind.ASSIGNED, actor=actor, text=f"{verb} ({how})" if user_id else "Unassigned",
                    previous_assignee_id=previous, assignee_id=user_id, how=how)
    payload = ticket_payload(ticket, previous_assignee_id=previous, how=how)
    if user_id and user_id != getattr(actor, "pk", None):
        urgent = ticket.priority in (TicketPriority.URGENT, TicketPriority.CRITICAL)
        payload["notify"] = _notify("ticket_assigned", "high" if urgent else "medium", user_ids=[user_id],
                                    title=f"{ticket.number} was assigned to you", ticket=ticket)
    writes.publish("ticket.assigned", ticket, actor=actor, payload=payload)


def _eligible_assignee(ticket: Ticket, user) -> bool:
    orgs = [ticket.tenant_id] + ([ticket.partner_id] if ticket.partner_id else [])
    return (
        user.is_active
        and Membership.objects.filter(
            user=user, is_active=True, role__in=list(STAFF_WORKERS)
        ).filter(organization_id__in=orgs).exists()
    ) or Membership.objects.filter(user=user, is_active=True, organization__kind=OrgKind.PLATFORM).exists()


def ticket_assign(ticket: Ticket, *, actor, assignee=None, auto: bool = False) -> Ticket:
    """Assign a ticket to a staff member of its tenant (or its partner, or the platform);
    `assignee=None` unassigns; `auto=True` picks per the tenant's assignment mode."""
    _require(actor, "assign", ticket)
    with transaction.atomic():
        ticket = _lock(ticket)
        if auto:
            conf = tenant_ticket_settings(ticket.tenant_id)
            mode = conf["assignment"] if conf["assignment"] != AssignmentMode.OFF else AssignmentMode.LEAST_LOADED
            _assignment_lock(ticket.tenant_id)
            user_id = pick_agent(ticket.tenant_id, mode, only_available=conf["only_available"])
            if user_id is None:
                raise ValidationError({"assignee": "No available support agent in this tenant."})
            writes = BatchedWrites()
            _set_assignee(ticket, user_id, actor=actor, how=mode, writes=writes)
            writes.flush()
            return ticket
        if assignee is not None and not _eligible_assignee(ticket, assignee):
            raise ValidationError({"assignee": f"{assignee} is not an active staff member of this ticket's organizations."})
        new_id = assignee.pk if assignee is not None else None
        if new_id != ticket.assignee_id:
            writes = BatchedWrites()
            _set_assignee(ticket, new_id, actor=actor, how="manual", writes=writes)
            writes.flush()
    return ticket


# -- status, priority, escalation ----------------------------------------------------------
def _move(ticket: Ticket, new: str, *, actor, note: str = "") -> None:
    old = ticket.status
    if new == old:
        return
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old]))
        raise ValidationError({"status": f"A ticket that is {old} cannot become {new}. Allowed: {allowed}."})
    now = timezone.now()
    if old == TicketStatus.WAITING:
        pause_start = ticket.sla_paused_at
    elif old in DONE_STATUSES:
        pause_start = ticket.resolved_at or ticket.closed_at
    else:
        pause_start = None
    ticket.status = new
    if new == TicketStatus.WAITING:
        ticket.sla_paused_at = now
    elif new in CLOCK_RUNNING_STATUSES and (old == TicketStatus.WAITING or old in DONE_STATUSES):
        _pause_ended(ticket, pause_start, now)
    if new == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    if new == TicketStatus.CLOSED:
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    if new in CLOCK_RUNNING_STATUSES:
        ticket.resolved_at = ticket.closed_at = None
    if new in DONE_STATUSES and old == TicketStatus.WAITING:
        ticket.sla_paused_at = None
    _timeline(ticket, TimelineKind.STATUS, actor=actor, text=f"{old} → {new}" + (f": {note}" if note else ""), old=old, new=new)
    notify = None
    if new in (TicketStatus.RESOLVED, TicketStatus.WAITING) and ticket.created_by_id and ticket.created_by_id != getattr(actor, "pk", None):
        notify = _notify("ticket_status", "medium", user_ids=[ticket.created_by_id],
                         title=f"{ticket.number} is now {TicketStatus(new).label.lower()}", ticket=ticket)
    publish("ticket.status_changed", tenant=ticket.tenant_id, actor=actor,
            payload=ticket_payload(ticket, old_status=old, new_status=new, note=note, notify=notify))
    if new == TicketStatus.RESOLVED:
        publish("ticket.resolved", tenant=ticket.tenant_id, actor=actor, payload=ticket_payload(ticket))


def ticket_change_status(ticket: Ticket, *, actor, status: str, note: str = "") -> Ticket:
    """Move a ticket along the transition table; waiting pauses the SLA clock, leaving it
    (or reopening) resumes it with the due times pushed back by the paused working time."""
    if status not in TicketStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}. Use one of: {', '.join(TicketStatus.values)}."})
    _require(actor, "status", ticket)
    with transaction.atomic():
        ticket = _lock(ticket)
        _move(ticket, status, actor=actor, note=note)
        ticket.full_clean(exclude=["number"])
        ticket.save()
    return ticket


def ticket_update(ticket: Ticket, *, actor, subject=None, priority=None, tags=None, metadata=None, **_ignored) -> Ticket:
    """Edit subject, priority, tags, metadata; a priority change recomputes the due times."""
    _require(actor, "change", ticket)
    with transaction.atomic():
        ticket = _lock(ticket)
        old_priority = ticket.priority
        if subject is not None:
            ticket.subject = subject.strip()
        if tags is not None:
            ticket.tags = list(tags)
        if metadata is not None:
            ticket.metadata = dict(metadata)
        if priority is not None and priority != ticket.priority:
            old = ticket.priority
            ticket.priority = priority
            _apply_clock(ticket)
            _timeline(ticket, TimelineKind.PRIORITY, actor=actor, text=f"{old} → {priority}", old=old, new=priority)
        ticket.full_clean(exclude=["number"])
        ticket.save()
        if priority is not None and priority != old_priority:
            # the alerts app raises a critical-ticket alert when this reaches critical (docs/events.md)
            publish("ticket.priority_changed", tenant=ticket.tenant_id, actor=actor, payload=ticket_payload(ticket, old_priority=old_priority))
    return ticket


def ticket_escalate(ticket: Ticket, *, actor, level: int, reason: str, to_partner=None) -> Ticket:
    """Raise the escalation level (1–3, never down) and mark the ticket escalated; with
    `to_partner` (a partner serving the tenant) the partner gains sight of it and
    ticket.escalated_to_partner is published."""
    _require(actor, "escalate", ticket)
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the ticket is escalated."})
    try:
        level = int(level)
    except (TypeError, ValueError):
        raise ValidationError({"level": "The level is a number from 1 to 3."})
    with transaction.atomic():
        ticket = _lock(ticket)
        if not 1 <= level <= 3:
            raise ValidationError({"level": "The level is a number from 1 to 3."})
        if level < ticket.escalation_level or (level == ticket.escalation_level and to_partner is None):
            raise ValidationError({"level": f"The ticket is already at level {ticket.escalation_level}; escalate to a higher level."})
        partner_row = _resolve_partner(ticket.tenant_id, to_partner, tenant_slug=ticket.tenant.slug) if to_partner is not None else None
        old_level = ticket.escalation_level
        ticket.escalation_level = level
        _move(ticket, TicketStatus.ESCALATED, actor=actor, note=reason)
        if partner_row is not None:
            ticket.partner = partner_row
        ticket.full_clean(exclude=["number"])
        ticket.save()
        _timeline(ticket, TimelineKind.ESCALATED, actor=actor, text=f"Level {old_level} → {level}: {reason}",
                  old_level=old_level, level=level, partner_id=partner_row.pk if partner_row else None)
        publish("ticket.escalated", tenant=ticket.tenant_id, actor=actor,
                payload=ticket_payload(ticket, reason=reason, old_level=old_level,
                                       notify=_notify("ticket_escalated", "high", user_ids=[ticket.assignee_id], roles=[Role.ADMIN],
                                                      title=f"{ticket.number} escalated to level {level}", message=reason, ticket=ticket)))
        if partner_row is not None:
            _publish_to_partner(ticket, actor=actor, reason=reason)
    return ticket


# -- messages ------------------------------------------------------------------------------
def ticket_reply(ticket: Ticket, *, actor, body: str, is_internal: bool = False, attachments=(), as_customer: bool = False) -> TicketMessage:
    """Add a public reply or internal note. The first public staff reply records the first
    response; a customer's reply resumes a ticket waiting on them (and reopens a resolved one).
    `as_customer` (system only): relay the customer side without a user (an unverified email sender)."""
    _require(actor, "reply", ticket)
    side = ActorType.CUSTOMER if actor is None and as_customer else actor_type(actor)
    if not (body or "").strip():
        raise ValidationError({"body": "The message is empty."})
    if is_internal and side == ActorType.CUSTOMER:
        raise PermissionDenied("Customers cannot write internal notes.")
    for upload in attachments or ():
        validate_attachment(upload)
    with transaction.atomic():
        ticket = _lock(ticket)
        if ticket.status == TicketStatus.CLOSED:
            raise ValidationError({"body": "This ticket is closed; open a new ticket."})
        now = timezone.now()
        msg = TicketMessage.objects.create(ticket=ticket, author=actor, author_type=side, body=body, is_internal=is_internal, created_at=now)
        _store_attachments(ticket, attachments, actor=actor, message=msg)
        if side == ActorType.CUSTOMER:
            if ticket.status in (TicketStatus.WAITING, TicketStatus.RESOLVED):
                _move(ticket, TicketStatus.OPEN, actor=actor, note="customer replied")
        elif not is_internal and ticket.first_responded_at is None:
            ticket.first_responded_at = now
            ticket.sla_at_risk = False
            _apply_clock(ticket)
            _timeline(ticket, TimelineKind.FIRST_RESPONSE, actor=actor, text="First response",
                      breached=ticket.first_response_breached)
        ticket.save()
        notify = None
        if not is_internal:
            if side == ActorType.CUSTOMER:
                notify = _notify("ticket_reply", "medium", user_ids=[ticket.assignee_id], title=f"Customer replied on {ticket.number}", ticket=ticket)
            elif ticket.created_by_id and ticket.created_by_id != getattr(actor, "pk", None):
                notify = _notify("ticket_reply", "medium", user_ids=[ticket.created_by_id], title=f"New reply on {ticket.number}", ticket=ticket)
                if _reply_mailed_to_creator(ticket):
                    # the threaded reply is their email about it; the notice stays in the app (docs/email.md)
                    notify["emailed_user_ids"] = [ticket.created_by_id]
        publish("ticket.message_added", tenant=ticket.tenant_id, actor=actor,
                payload=ticket_payload(ticket, message_id=msg.pk, is_internal=is_internal, author_type=side,
                                       **({"notify": notify} if notify and notify["user_ids"] else {})))
    return msg


def _reply_mailed_to_creator(ticket: Ticket) -> bool:
    """Whether tickets.mail mails a public staff reply on `ticket` to the address of its creator."""
    if not (isinstance(ticket.metadata, dict) and "email" in ticket.metadata):
        return False
    from .mail.services import reply_route  # lazy: the mail services build on this module

    route = reply_route(ticket)
    return route is not None and route[0].strip().lower() == (ticket.created_by.email or "").strip().lower()


def tickets_recompute_sla(*, tenant_id: int) -> int:
    """Recompute the due times of a tenant's open incident-linked tickets (a maintenance window
    covering them was created, changed or removed). Returns the number of tickets changed."""
    changed = 0
    ids = list(Ticket.objects.filter(tenant_id=tenant_id, status__in=list(OPEN_STATUSES), metadata__has_key="incident")
               .values_list("pk", flat=True)[:5000])
    for pk in ids:
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().select_related("tenant").get(pk=pk)
            before = (ticket.first_response_due_at, ticket.resolution_due_at, ticket.sla_warn_at)
            _apply_clock(ticket)
            if before != (ticket.first_response_due_at, ticket.resolution_due_at, ticket.sla_warn_at):
                ticket.save(update_fields=["sla_policy", "first_response_due_at", "resolution_due_at", "sla_warn_at", "sla_at_risk",
                                           "first_response_breached", "resolution_breached", "sla_breached_at", "updated_at"])
                _timeline(ticket, TimelineKind.SLA_PAUSED, text="SLA due times moved by a maintenance window",
                          resolution_due_at=ticket.resolution_due_at.isoformat() if ticket.resolution_due_at else None)
                changed += 1
    return changed


# -- SLA sweep -----------------------------------------------------------------------------
_SWEEP_COLUMNS = (
    "id", "tenant_id", "number", "subject", "status", "priority", "assignee_id", "customer_id", "partner_id",
    "origin_type", "target_type", "escalation_level", "created_by_id", "created_at", "first_response_due_at",
    "resolution_due_at", "first_responded_at",
)
IMMEDIATE_DISPATCH = 500  # events beyond this per sweep are left to the core outbox sweeper


def _flag(where, order_field: str, set_sql: str, set_params: list, *, batch: int) -> list[dict]:
    """One UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …: flags a
    batch of rows set-based; concurrent sweeps skip each other's rows, so each flag (and its
    event) happens once."""
    sel = Ticket.objects.filter(where).order_by(order_field).values("id")[:batch].select_for_update(skip_locked=True, of=("self",))
    sel_sql, sel_params = sel.query.sql_with_params()
    table = Ticket._meta.db_table
    cols = ", ".join(f'"{c}"' for c in _SWEEP_COLUMNS)
    sql = f'UPDATE "{table}" SET {set_sql} WHERE "id" IN ({sel_sql}) RETURNING {cols}'
    with connection.cursor() as cur:
        cur.execute(sql, [*set_params, *sel_params])
        return [dict(zip(_SWEEP_COLUMNS, row, strict=True)) for row in cur.fetchall()]


class _Row:
    """Enough of a ticket, built from RETURNING columns, for ticket_payload()."""

    def __init__(self, data):
        self.__dict__.update(data)
        self.pk = data["id"]

    def get_admin_url(self):
        return f"/admin/tickets/ticket/{self.pk}/change/"


def _sweep_events(rows, *, kind: str, name: str, now) -> None:
    events, timeline = [], []
    for data in rows:
        row = _Row(data)
        target = data.pop("_target")
        due = data["first_response_due_at"] if target == "first_response" else data["resolution_due_at"]
        label = target.replace("_", " ")
        if kind == TimelineKind.SLA_BREACHED:
            title = f"{row.number} breached its {label} SLA"
            notify = _notify("ticket_sla_breached", "urgent", user_ids=[row.assignee_id], roles=[Role.ADMIN],
                             title=title, message=row.subject, ticket=row)
        else:
            title = f"{row.number} is at risk of breaching its {label} SLA"
            notify = _notify("ticket_sla_at_risk", "high", user_ids=[row.assignee_id],
                             roles=[] if row.assignee_id else [Role.SUPPORT_AGENT], title=title, message=row.subject, ticket=row)
        payload = ticket_payload(row, sla_target=target, due_at=due.isoformat() if due else None, notify=notify)
        payload["title"] = title
        events.append((name, row.tenant_id, payload, None))
        timeline.append(TicketEvent(ticket_id=row.pk, kind=kind, text=title[:300], data={"sla_target": target}, created_at=now))
    TicketEvent.objects.bulk_create(timeline, batch_size=1000)
    write_events(events, dispatch_now=IMMEDIATE_DISPATCH)


def sla_sweep(*, now: datetime | None = None, batch: int = 5000) -> dict:
    """Mark at-risk and breached tickets set-based and publish ticket.sla_at_risk /
    ticket.sla_breached once per flag (idempotent: a flagged row is not selected again).
    Only tickets whose clock runs are considered (waiting, resolved and closed are paused)."""
    from django.db.models import Q

    now = now or timezone.now()
    running = Q(status__in=list(CLOCK_RUNNING_STATUSES))
    counts = {"at_risk": 0, "first_response_breached": 0, "resolution_breached": 0}
    phases = [
        ("at_risk", running & Q(sla_at_risk=False, sla_warn_at__lte=now), "sla_warn_at",
         '"sla_at_risk" = true', [], TimelineKind.SLA_AT_RISK, "ticket.sla_at_risk"),
        ("first_response_breached",
         running & Q(first_responded_at__isnull=True, first_response_breached=False, first_response_due_at__lte=now),
         "first_response_due_at", '"first_response_breached" = true, "sla_at_risk" = true, "sla_breached_at" = COALESCE("sla_breached_at", %s)',
         [now], TimelineKind.SLA_BREACHED, "ticket.sla_breached"),
        ("resolution_breached", running & Q(resolution_breached=False, resolution_due_at__lte=now),
         "resolution_due_at", '"resolution_breached" = true, "sla_at_risk" = true, "sla_breached_at" = COALESCE("sla_breached_at", %s)',
         [now], TimelineKind.SLA_BREACHED, "ticket.sla_breached"),
    ]
    for key, where, order, set_sql, params, kind, name in phases:
        while True:
            with transaction.atomic():
                rows = _flag(where, order, set_sql, params, batch=batch)
                for r in rows:
                    if key == "at_risk":
                        r["_target"] = "first_response" if r["first_responded_at"] is None and r["first_response_due_at"] else "resolution"
                    else:
                        r["_target"] = "first_response" if key == "first_response_breached" else "resolution"
                if rows:
                    _sweep_events(rows, kind=kind, name=name, now=now)
            counts[key] += len(rows)
            if len(rows) < batch:
                break
    return counts
