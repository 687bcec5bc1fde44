"""Models of the tickets app: tickets, messages, attachments, the timeline, SLA policies,
business-hours calendars and the agents that auto-assignment picks from."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import OrgKind, Role
from apps.core.models import PortalManager, TenantOwnedModel
from apps.core.tenancy import Acting

from .choices import ActorType, TicketPriority, TicketStatus, TimelineKind

R = Role
STAFF_WORKERS = {R.OWNER, R.ADMIN, R.OPERATOR, R.SUPPORT_AGENT}
TICKET_ROLE_ACTIONS = {
    "view": {*STAFF_WORKERS, R.VIEWER, R.CUSTOMER},
    "add": {*STAFF_WORKERS, R.CUSTOMER},
    "change": STAFF_WORKERS,
    "delete": {R.OWNER, R.ADMIN},
    "reply": {*STAFF_WORKERS, R.CUSTOMER},
    "attach": {*STAFF_WORKERS, R.CUSTOMER},
    "assign": STAFF_WORKERS,
    "escalate": STAFF_WORKERS,
    "status": STAFF_WORKERS,
}
RUNNING = [TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.ESCALATED]
UNRESOLVED = [*RUNNING, TicketStatus.WAITING]
# The timeline entries customers see; the rest (assignment, SLA flags, internal notes) stays with staff.
CUSTOMER_TIMELINE_KINDS = (TimelineKind.CREATED, TimelineKind.STATUS)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(value: str) -> time | None:
    """'09:00' → time; '24:00' → None (end of day)."""
    if value == "24:00":
        return None
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


class BusinessCalendar(TenantOwnedModel):
    """Working hours per weekday in a time zone, plus holidays: what SLA clocks count.

    `working_hours` maps weekday names to lists of ["HH:MM", "HH:MM"] intervals
    (`{"mon": [["09:00", "17:00"]], ...}`, "24:00" ends a day); a missing day is not worked.
    An empty time zone means the tenant's."""

    name = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, blank=True, default="")
    working_hours = models.JSONField(default=dict, blank=True)
    holidays = models.JSONField(default=list, blank=True, help_text='Dates not worked: ["2026-12-25", ...]')
    is_default = models.BooleanField(default=False, help_text="Used by SLA policies without a calendar.")

    PORTAL_ROLE_ACTIONS = {"view": {*STAFF_WORKERS, R.VIEWER}, "add": {R.OWNER, R.ADMIN}, "change": {R.OWNER, R.ADMIN}}

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_default=True), name="tickets_one_default_calendar"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from datetime import date
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError({"timezone": f"Unknown time zone {self.timezone!r}; use an IANA name such as Europe/Berlin."})
        if not isinstance(self.working_hours, dict):
            raise ValidationError({"working_hours": 'Give a mapping such as {"mon": [["09:00", "17:00"]]}.'})
        total = 0
        for day, intervals in self.working_hours.items():
            if day not in WEEKDAYS:
                raise ValidationError({"working_hours": f"Unknown weekday {day!r}; use {', '.join(WEEKDAYS)}."})
            try:
                for start, end in intervals:
                    s, e = _parse_hhmm(start), _parse_hhmm(end)
                    if s is None or (e is not None and e <= s):
                        raise ValueError
                    total += 1
            except (TypeError, ValueError):
                raise ValidationError({"working_hours": f"{day}: each interval is [\"HH:MM\", \"HH:MM\"] with start before end."})
        if not total:
            raise ValidationError({"working_hours": "A calendar needs at least one working interval."})
        try:
            [date.fromisoformat(d) for d in self.holidays]
        except (TypeError, ValueError):
            raise ValidationError({"holidays": "Holidays are ISO dates: [\"2026-12-25\"]."})


class SlaPolicy(TenantOwnedModel):
    """Targets for one tenant and priority: minutes to first response and to resolution,
    counted in business time of `calendar` (else the tenant's default calendar, else 24×7)."""

    name = models.CharField(max_length=100)
    priority = models.CharField(max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    at_risk_percent = models.PositiveSmallIntegerField(
        default=80, help_text="A ticket is at risk once this share of a target's time has passed."
    )
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="policies")
    is_active = models.BooleanField(default=True)

    PORTAL_ROLE_ACTIONS = {"view": {*STAFF_WORKERS, R.VIEWER}, "add": {R.OWNER, R.ADMIN}, "change": {R.OWNER, R.ADMIN}}

    class Meta:
        ordering = ["tenant_id", "priority"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "priority"], condition=Q(is_active=True), name="tickets_one_active_sla_per_priority"),
            models.CheckConstraint(condition=Q(at_risk_percent__gte=1, at_risk_percent__lte=99), name="tickets_sla_at_risk_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.priority})"

    def clean(self) -> None:
        fr, res = self.first_response_minutes, self.resolution_minutes
        if fr is not None and res is not None and fr > res:
            raise ValidationError({"first_response_minutes": "First response cannot be due after resolution."})
        if self.calendar_id and self.tenant_id and self.calendar.tenant_id != self.tenant_id:
            raise ValidationError({"calendar": "The calendar belongs to another tenant."})


class TicketAgent(TenantOwnedModel):
    """A support agent's availability and last assignment time (for round-robin and fair
    tie-breaks). Rows are created on first assignment; an agent marks themselves unavailable."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ticket_agent_profiles")
    is_available = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {"view": {*STAFF_WORKERS, R.VIEWER}, "add": {R.OWNER, R.ADMIN}, "change": {R.OWNER, R.ADMIN}}

    class Meta:
        ordering = ["tenant_id", "user_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="tickets_agent_unique")]

    def __str__(self) -> str:
        return f"agent {self.user} ({'available' if self.is_available else 'away'})"


class Ticket(TenantOwnedModel):
    """A support ticket between organizations (customer, tenant, partner, platform).

    Origin and target actor types come from the creator's membership and the routing matrix,
    never from the request. SLA due times are computed by `apps.tickets.sla.sla_clock`; breach
    and at-risk flags are set by the set-based sweep. Alerts link to tickets with a foreign key
    on the alert (`alerts` sits above `tickets`)."""

    number = models.CharField(max_length=12, unique=True, editable=False)
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    priority = models.CharField(max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL)
    # severity as a number (low 1 … critical 5) for ordering by an index; the database computes
    # it from `priority` on every write, so no writer can leave it stale
    priority_rank = models.GeneratedField(
        expression=models.Case(*[models.When(priority=p, then=models.Value(i)) for i, p in enumerate(TicketPriority.values, 1)],
                               default=models.Value(0)),
        output_field=models.SmallIntegerField(), db_persist=True,
    )
    origin_type = models.CharField(max_length=10, choices=ActorType.choices, editable=False)
    target_type = models.CharField(max_length=10, choices=ActorType.choices)
    customer = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"kind": OrgKind.CUSTOMER}, help_text="The customer organization that opened the ticket.",
    )
    partner = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"kind": OrgKind.PARTNER}, help_text="The partner the ticket is routed or escalated to (or that opened it).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets")
    escalation_level = models.PositiveSmallIntegerField(default=0, choices=[(i, f"Level {i}") for i in range(4)])
    sla_policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # SLA clock state (see sla.py): started at creation; business seconds spent paused so far.
    sla_started_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_paused_seconds = models.PositiveIntegerField(default=0)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_warn_at = models.DateTimeField(null=True, blank=True, help_text="When the next target becomes at risk.")
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    sla_at_risk = models.BooleanField(default=False)
    first_response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)
    sla_breached_at = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    objects = PortalManager()

    PORTAL_ROLE_ACTIONS = TICKET_ROLE_ACTIONS
    PARTNER_VISIBLE = True

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the selective filters (issue 24.4) under the default order, each a range of one index
            # whose count is an index-only scan: status, status + priority, priority, assignee,
            # not yet resolved, breached, at risk (the created range: tickets_tenant_created_id_idx)
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="tickets_t_status_created_idx"),
            models.Index(fields=["tenant", "status", "priority", "-created_at", "-id"], name="tickets_t_status_prio_idx"),
            models.Index(fields=["tenant", "priority", "-created_at", "-id"], name="tickets_t_prio_created_idx"),
            models.Index(fields=["tenant", "assignee", "-created_at", "-id"], name="tickets_t_assignee_idx"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="tickets_t_unresolved_idx", condition=Q(status__in=UNRESOLVED)),
            models.Index(fields=["tenant", "-created_at", "-id"], name="tickets_t_breached_idx",
                         condition=Q(first_response_breached=True) | Q(resolution_breached=True)),
            models.Index(fields=["tenant", "-created_at", "-id"], name="tickets_t_at_risk_idx", condition=Q(sla_at_risk=True)),
            # every ordering the API and admin offer (apps/tickets/search.py): tenant, key, id
            models.Index(fields=["tenant", "-created_at", "-id"], name="tickets_tenant_created_id_idx"),
            models.Index(fields=["tenant", "priority_rank", "id"], name="tickets_tenant_prio_id_idx"),
            models.Index(fields=["tenant", "status", "id"], name="tickets_tenant_status_id_idx"),
            models.Index(fields=["tenant", "resolution_due_at", "id"], name="tickets_tenant_res_due_id_idx"),
            models.Index(fields=["customer", "-created_at"], name="tickets_customer_idx"),
            models.Index(fields=["partner", "-created_at"], name="tickets_partner_idx"),
            models.Index(fields=["assignee", "status"], name="tickets_assignee_status_idx"),
            models.Index(
                fields=["first_response_due_at"], name="tickets_fr_due_idx",
                condition=Q(status__in=RUNNING, first_responded_at__isnull=True, first_response_breached=False),
            ),
            models.Index(
                fields=["resolution_due_at"], name="tickets_res_due_idx",
                condition=Q(status__in=RUNNING, resolution_breached=False),
            ),
            models.Index(fields=["sla_warn_at"], name="tickets_warn_idx", condition=Q(status__in=RUNNING, sla_at_risk=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(escalation_level__lte=3), name="tickets_escalation_level_0_3"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    @property
    def sla_breached(self) -> bool:
        return self.first_response_breached or self.resolution_breached

    def get_admin_url(self) -> str:
        return f"/admin/tickets/ticket/{self.pk}/change/"

    def clean(self) -> None:
        if not isinstance(self.tags, list) or not all(isinstance(t, str) and t.strip() for t in self.tags):
            raise ValidationError({"tags": "Tags are a list of non-empty strings."})
        if not isinstance(self.metadata, dict):
            raise ValidationError({"metadata": "Metadata is a JSON object."})
        if self.escalation_level is not None and self.escalation_level > 3:
            raise ValidationError({"escalation_level": "The escalation level is 0 to 3."})

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Platform: all. Tenant staff: their tenant. Partners: tickets routed or escalated to
        them (of tenants they still serve). Customers: their organization's tickets."""
        if ctx.is_platform:
            return queryset
        if ctx.kind == OrgKind.TENANT and ctx.tenant_id:
            return queryset.filter(tenant_id=ctx.tenant_id)
        if ctx.kind == OrgKind.PARTNER and ctx.served_tenant_ids:
            return queryset.filter(partner_id=ctx.organization_id, tenant_id__in=ctx.served_tenant_ids)
        if ctx.kind == OrgKind.CUSTOMER and ctx.organization_id:
            return queryset.filter(customer_id=ctx.organization_id, tenant_id=ctx.tenant_id)
        return queryset.none()


class _TicketChild(models.Model):
    """Rows that belong to a ticket: visible exactly where the ticket is."""

    objects = PortalManager()
    PORTAL_ROLE_ACTIONS = TICKET_ROLE_ACTIONS

    class Meta:
        abstract = True

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        tickets = Ticket.scope_queryset(Ticket.objects.all(), ctx, "view")
        if ctx.is_platform:
            return queryset
        return queryset.filter(ticket__in=tickets.values("pk"))

    def shown_to(self, ctx: Acting) -> bool:
        """Whether a user who sees the ticket sees this row: the per-row part of
        `scope_queryset`, for answers built from rows in memory (superusers see every row)."""
        return ctx.superuser or ctx.kind != OrgKind.CUSTOMER or self._shown_to_customer()

    def _shown_to_customer(self) -> bool:
        return True


class TicketMessage(_TicketChild):
    """A public reply or an internal note (customers never see internal notes)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_type = models.CharField(max_length=10, choices=ActorType.choices)
    body = models.TextField()
    is_internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="tickets_message_ticket_idx")]

    def __str__(self) -> str:
        return f"{'note' if self.is_internal else 'reply'} on {self.ticket_id}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        queryset = super().scope_queryset(queryset, ctx, action)
        return queryset.filter(is_internal=False) if ctx.kind == OrgKind.CUSTOMER else queryset

    def _shown_to_customer(self) -> bool:
        return not self.is_internal


def attachment_path(instance, filename: str) -> str:
    return f"tickets/{instance.ticket.tenant_id}/{instance.ticket_id}/{filename}"


class TicketAttachment(_TicketChild):
    """A file on a ticket (optionally on one message); size and type limits in settings."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(TicketMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=300)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.filename

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        queryset = super().scope_queryset(queryset, ctx, action)
        if ctx.kind == OrgKind.CUSTOMER:
            return queryset.filter(Q(message__isnull=True) | Q(message__is_internal=False))
        return queryset

    def _shown_to_customer(self) -> bool:
        return self.message_id is None or not self.message.is_internal


class TicketEvent(_TicketChild):
    """One entry of a ticket's timeline (created, status change, assignment, escalation, SLA)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=TimelineKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.CharField(max_length=300, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="tickets_event_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        queryset = super().scope_queryset(queryset, ctx, action)
        if ctx.kind == OrgKind.CUSTOMER:
            return queryset.filter(kind__in=CUSTOMER_TIMELINE_KINDS)
        return queryset

    def _shown_to_customer(self) -> bool:
        return self.kind in CUSTOMER_TIMELINE_KINDS


from .canned import CannedResponse  # noqa: E402,F401  (stock replies of the ticket desk)
from .mail.models import Mailbox, MailMessage  # noqa: E402,F401  ticket mail (apps/tickets/mail/)
