import json
import threading

from django.contrib.auth import get_user_model
from django.db.models.query import BaseIterable
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer
from apps.core.tenancy import acting

from ..choices import ActorType, TicketPriority, TicketStatus
from ..models import Ticket, TicketAttachment, TicketEvent, TicketMessage


class JSONObjectField(serializers.JSONField):
    """A JSON object given as JSON or, in multipart forms, as a JSON string."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.")
        if not isinstance(data, dict):
            raise serializers.ValidationError("Give a JSON object.")
        return data


class TagsField(serializers.ListField):
    child = serializers.CharField(max_length=50)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [t.strip() for t in data.split(",") if t.strip()]
        return super().to_internal_value(data)


class AttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = TicketAttachment
        fields = ["id", "filename", "content_type", "size", "message", "created_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, obj) -> str:
        return reverse("ticket-download", kwargs={"pk": obj.ticket_id, "attachment_id": obj.pk})


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = TicketMessage
        fields = ["id", "author", "author_type", "body", "is_internal", "created_at"]
        read_only_fields = fields


class TimelineSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", read_only=True, default=None, allow_null=True)  # None: the system

    class Meta:
        model = TicketEvent
        fields = ["id", "kind", "actor", "text", "data", "created_at"]
        read_only_fields = fields


LIST_FIELDS = [
    "id", "ticket_number", "subject", "status", "priority", "origin_type", "target_type", "tenant", "customer",
    "partner", "assignee", "assignee_username", "escalation_level", "first_response_due_at", "resolution_due_at",
    "first_responded_at", "resolved_at", "sla_at_risk", "first_response_breached", "resolution_breached", "tags",
    "created_at", "updated_at",
]


class TicketSerializer(ScopedModelSerializer):
    ticket_number = serializers.CharField(source="number", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    partner = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    assignee_username = serializers.CharField(source="assignee.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = Ticket
        fields = LIST_FIELDS
        read_only_fields = LIST_FIELDS


class TicketDetailSerializer(TicketSerializer):
    messages = MessageSerializer(many=True, read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    timeline = TimelineSerializer(many=True, read_only=True)

    class Meta(TicketSerializer.Meta):
        fields = [*LIST_FIELDS, "metadata", "sla_policy", "messages", "attachments", "timeline"]
        read_only_fields = fields


_DATETIME = serializers.DateTimeField()


def _dt(value):
    return _DATETIME.to_representation(value)


def created_ticket_data(ticket: Ticket, user) -> dict:
    """The answer of POST /tickets/: what TicketDetailSerializer gives for the new ticket (a test
    holds the two equal), built from the rows `ticket_create` just wrote (`ticket.creation`)
    instead of reading them back: no query, no serializer fields to build."""
    ctx = acting(user)
    made = ticket.creation
    return {
        "id": ticket.pk,
        "ticket_number": ticket.number,
        "subject": ticket.subject,
        "status": str(ticket.status),
        "priority": str(ticket.priority),
        "origin_type": str(ticket.origin_type),
        "target_type": str(ticket.target_type),
        "tenant": made.tenant_slug,
        "customer": made.customer_slug,
        "partner": made.partner_slug,
        "assignee": ticket.assignee_id,
        "assignee_username": made.assignee_username,
        "escalation_level": ticket.escalation_level,
        "first_response_due_at": _dt(ticket.first_response_due_at),
        "resolution_due_at": _dt(ticket.resolution_due_at),
        "first_responded_at": _dt(ticket.first_responded_at),
        "resolved_at": _dt(ticket.resolved_at),
        "sla_at_risk": ticket.sla_at_risk,
        "first_response_breached": ticket.first_response_breached,
        "resolution_breached": ticket.resolution_breached,
        "tags": ticket.tags,
        "created_at": _dt(ticket.created_at),
        "updated_at": _dt(ticket.updated_at),
        "metadata": ticket.metadata,
        "sla_policy": ticket.sla_policy_id,
        "messages": [
            {"id": m.pk, "author": m.author.username if m.author_id else None, "author_type": str(m.author_type), "body": m.body,
             "is_internal": m.is_internal, "created_at": _dt(m.created_at)}
            for m in [made.message] if m.shown_to(ctx)
        ],
        "attachments": [
            {"id": a.pk, "filename": a.filename, "content_type": a.content_type, "size": a.size, "message": a.message_id,
             "created_at": _dt(a.created_at), "download_url": reverse("ticket-download", kwargs={"pk": ticket.pk, "attachment_id": a.pk})}
            for a in made.attachments if a.shown_to(ctx)
        ],
        "timeline": [
            {"id": e.pk, "kind": str(e.kind), "actor": e.actor.username if e.actor_id else None, "text": e.text, "data": e.data,
             "created_at": _dt(e.created_at)}
            for e in made.timeline if e.shown_to(ctx)
        ],
    }


# The list read path (GET /tickets/): the page is read with `values()` (no model instances) and
# mapped to what TicketSerializer gives (tests/tickets/test_list_path.py holds the two equal);
# docs/api-performance.md has the profile that motivated it.
LIST_COLUMNS = (
    "id", "number", "subject", "status", "priority", "origin_type", "target_type", "tenant__slug", "customer__slug",
    "partner__slug", "assignee_id", "assignee__username", "escalation_level", "first_response_due_at", "resolution_due_at",
    "first_responded_at", "resolved_at", "sla_at_risk", "first_response_breached", "resolution_breached", "tags",
    "created_at", "updated_at",
    "priority_rank",  # a sort key (`?ordering=priority`), for a paginator reading the boundary row; not shown
)


class TicketRow(dict):
    """One row of `ticket_rows`: its columns by name, also as attributes (a keyset paginator reads
    the boundary row's sort key with getattr, DRF's cursor paginator by key)."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _TicketRows(BaseIterable):
    """Reads a ticket queryset as TicketRows of LIST_COLUMNS (plus the search rank when searching).
    The columns are chosen only when the rows are read, so a paginator's count of the same
    queryset stays a count of ids, without the list's joins and columns."""

    def __iter__(self):
        queryset = self.queryset
        extra = [name for name in ("search_rank",) if name in queryset.query.annotations]
        for row in queryset.values(*LIST_COLUMNS, *extra):
            yield TicketRow(row)


def ticket_rows(queryset):
    """`queryset` (tickets, already scoped, filtered and ordered; paginate it as usual) read as
    TicketRows: one SELECT, no model instance per ticket and related row."""
    rows = queryset.all()
    rows._iterable_class = _TicketRows
    return rows


def _iso(value, tz):
    """DRF's DateTimeField.to_representation (ISO 8601, in the current time zone, UTC as Z) of an aware datetime."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def ticket_list_data(rows) -> list[dict]:
    """TicketSerializer(many=True).data of the tickets in `rows` (from `ticket_rows`)."""
    tz = timezone.get_current_timezone()
    return [
        {
            "id": r["id"],
            "ticket_number": r["number"],
            "subject": r["subject"],
            "status": r["status"],
            "priority": r["priority"],
            "origin_type": r["origin_type"],
            "target_type": r["target_type"],
            "tenant": r["tenant__slug"],
            "customer": r["customer__slug"],
            "partner": r["partner__slug"],
            "assignee": r["assignee_id"],
            "assignee_username": r["assignee__username"],
            "escalation_level": r["escalation_level"],
            "first_response_due_at": _iso(r["first_response_due_at"], tz),
            "resolution_due_at": _iso(r["resolution_due_at"], tz),
            "first_responded_at": _iso(r["first_responded_at"], tz),
            "resolved_at": _iso(r["resolved_at"], tz),
            "sla_at_risk": r["sla_at_risk"],
            "first_response_breached": r["first_response_breached"],
            "resolution_breached": r["resolution_breached"],
            "tags": r["tags"],
            "created_at": _iso(r["created_at"], tz),
            "updated_at": _iso(r["updated_at"], tz),
        }
        for r in rows
    ]


class TicketCreateSerializer(serializers.Serializer):
    """The request of POST /tickets (seed 000): subject, message, priority, target_type,
    attachments (uploaded files, multipart), metadata; `tenant`/`partner` where the route needs them."""

    subject = serializers.CharField(max_length=200)
    message = serializers.CharField()
    priority = serializers.ChoiceField(choices=TicketPriority.choices, default=TicketPriority.NORMAL)
    target_type = serializers.ChoiceField(choices=ActorType.choices, required=False)
    tenant = serializers.CharField(required=False, help_text="Tenant slug (platform staff and partners serving several tenants).")
    partner = serializers.CharField(required=False, help_text="Partner slug when routing to a partner.")
    attachments = serializers.ListField(child=serializers.FileField(), required=False, default=list)
    metadata = JSONObjectField(required=False, default=dict)
    tags = TagsField(required=False, default=list)

    def validate_attachments(self, value):
        for item in value:
            if isinstance(item, str):
                raise serializers.ValidationError("Upload attachments as files (multipart/form-data).")
        return value


_bound = threading.local()


def validated_create(data) -> dict:
    """`TicketCreateSerializer(data=data)`'s validated data (raises its ValidationError): what
    both create routes (the DRF view and the lean route) validate with. One bound serializer per
    thread is reused: its fields keep no state between validations, and building them anew
    (DRF deep-copies every declared field per instance) costs more than the validation itself."""
    ser = getattr(_bound, "create", None)
    if ser is None:
        ser = _bound.create = TicketCreateSerializer(data=None)
        ser.fields  # noqa: B018 - binds the fields once
    for attr in ("_validated_data", "_errors", "_data"):
        ser.__dict__.pop(attr, None)
    ser.initial_data = data
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class TicketUpdateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=200, required=False)
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    tags = TagsField(required=False)
    metadata = JSONObjectField(required=False)


class ReplySerializer(serializers.Serializer):
    body = serializers.CharField()
    is_internal = serializers.BooleanField(default=False)
    attachments = serializers.ListField(child=serializers.FileField(), required=False, default=list)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), allow_null=True, required=False)
    auto = serializers.BooleanField(default=False, help_text="Pick an agent per the tenant's assignment mode.")


class EscalateSerializer(serializers.Serializer):
    level = serializers.IntegerField(min_value=1, max_value=3)
    reason = serializers.CharField()
    to_partner = serializers.CharField(required=False, allow_null=True, help_text="Partner slug.")


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()


