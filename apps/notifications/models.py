"""Notifications: in-app rows, per-user preferences, tenant channels, templates and the
delivery outbox (one Delivery per notification × channel, sent by Celery)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.choices import MANAGER_ROLES, OrgKind, Role
from apps.core.crypto import EncryptedTextField, decrypt
from apps.core.models import TenantOwnedModel
from apps.core.tenancy import Acting

from .choices import (
    ALL_TYPES,
    CONFIG_KINDS,
    PRIORITY_RANK,
    ChannelKind,
    DeliveryStatus,
    Digest,
    NotificationType,
    Priority,
    SuppressReason,
)

R = Role
EVERY_ROLE = {R.OWNER, R.ADMIN, R.OPERATOR, R.SUPPORT_AGENT, R.VIEWER, R.CUSTOMER}
TYPE_RE = re.compile(r"^(\*|[a-z][a-z0-9_]{0,63})$")


def validate_type(value: str) -> None:
    if not TYPE_RE.match(value or ""):
        raise ValidationError(f"{value!r} is not a notification type: use lower-case letters, digits and _ (or * for all).")


def validate_timezone(value: str) -> None:
    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.") from None


def own_rows(queryset, ctx: Acting, user_field: str):
    """Rows that belong to the acting user, within the organization they act for."""
    q = Q(**{f"{user_field}_id": ctx.user_id})
    if ctx.kind in (OrgKind.TENANT, OrgKind.CUSTOMER) and ctx.tenant_id:
        q &= Q(tenant_id=ctx.tenant_id)
    elif ctx.kind == OrgKind.PARTNER:
        q &= Q(tenant_id__in=ctx.served_tenant_ids)
    else:
        return queryset.none()
    return queryset.filter(q)


class Notification(TenantOwnedModel):
    """One message to one person, shown in-app (always) and delivered to the channels their
    preferences choose (Delivery rows). `event_id` links it to the core event that caused it,
    so a re-run handler never notifies twice."""

    # no single-column indexes on recipient (notif_recipient_idx leads with it) or type (read only
    # within a recipient's rows): a team fan-out writes every index of every row
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    notification_type = models.CharField(max_length=64, default=NotificationType.SYSTEM_ALERT, validators=[validate_type])
    title = models.CharField(max_length=300)
    message = models.TextField(blank=True, default="")
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    action_url = models.CharField(max_length=500, blank=True, default="")
    action_label = models.CharField(max_length=100, blank=True, default="")
    related_entity_type = models.CharField(max_length=100, blank=True, default="")
    related_entity_id = models.CharField(max_length=100, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    event_id = models.UUIDField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {
        "view": EVERY_ROLE,
        "read": EVERY_ROLE,
        "add": MANAGER_ROLES,
        "change": MANAGER_ROLES,
        "delete": MANAGER_ROLES,
        "notify_team": {R.OWNER, R.ADMIN, R.OPERATOR},
    }

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "-created_at"], name="notif_recipient_idx")]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "recipient"], condition=Q(event_id__isnull=False), name="notif_once_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.recipient_id}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Tenant managers see (and manage) every notification of their tenant; everyone else
        only their own. Marking read or archiving is always limited to one's own."""
        if action == "read":
            return own_rows(queryset, ctx, "recipient") if not ctx.superuser else queryset.filter(recipient_id=ctx.user_id)
        if ctx.is_platform:
            return queryset
        if ctx.kind == OrgKind.TENANT and ctx.role in MANAGER_ROLES:
            return queryset.filter(tenant_id=ctx.tenant_id)
        return own_rows(queryset, ctx, "recipient")


class Preference(TenantOwnedModel):
    """How one user wants notifications of one type (or `*` for every type without a row of
    its own): channels, minimum priority per channel, quiet hours in their time zone, digest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences")
    notification_type = models.CharField(max_length=64, default=ALL_TYPES, validators=[validate_type])
    channels = models.JSONField(default=list, blank=True, help_text='Channel kinds, e.g. ["in_app", "email", "slack"].')
    min_priority = models.JSONField(default=dict, blank=True, help_text='Per channel, e.g. {"email": "high"}.')
    timezone = models.CharField(max_length=64, blank=True, default="", validators=[validate_timezone], help_text="Blank: the tenant's time zone.")
    quiet_start = models.TimeField(null=True, blank=True, help_text="Quiet hours start (local time).")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Quiet hours end (local time).")
    urgent_bypasses_quiet = models.BooleanField(default=True)
    digest = models.CharField(max_length=8, choices=Digest.choices, default=Digest.OFF)

    PORTAL_ROLE_ACTIONS = {"view": EVERY_ROLE, "add": EVERY_ROLE, "change": EVERY_ROLE, "delete": EVERY_ROLE}

    class Meta:
        ordering = ["user_id", "notification_type"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user", "notification_type"], name="notif_pref_unique")]

    def __str__(self) -> str:
        return f"{self.user} · {self.notification_type}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Tenant managers manage the preferences of their tenant; everyone else their own."""
        if ctx.is_platform:
            return queryset
        if ctx.kind == OrgKind.TENANT and ctx.role in MANAGER_ROLES:
            return queryset.filter(tenant_id=ctx.tenant_id)
        return own_rows(queryset, ctx, "user")

    def clean(self) -> None:
        errors: dict[str, str] = {}
        bad = [c for c in (self.channels or []) if c not in ChannelKind.values]
        if not isinstance(self.channels, list) or bad:
            errors["channels"] = f"Unknown channel(s) {bad or self.channels!r}; use {', '.join(ChannelKind.values)}."
        if not isinstance(self.min_priority, dict) or any(
            k not in ChannelKind.values or v not in Priority.values for k, v in (self.min_priority or {}).items()
        ):
            errors["min_priority"] = f"Map channel kinds to one of {', '.join(Priority.values)}, e.g. {{\"email\": \"high\"}}."
        if (self.quiet_start is None) != (self.quiet_end is None):
            errors["quiet_end"] = "Give both the start and the end of quiet hours, or neither."
        elif self.quiet_start is not None and self.quiet_start == self.quiet_end:
            errors["quiet_end"] = "Quiet hours must not start and end at the same time."
        if errors:
            raise ValidationError(errors)

    def min_rank(self, kind: str) -> int:
        return PRIORITY_RANK[(self.min_priority or {}).get(kind, Priority.LOW)]


class ChannelConfig(TenantOwnedModel):
    """A tenant's chat/SMS/webhook destination: an Apprise URL (Slack, Teams `workflow://`,
    Telegram, SMS…) or a generic HTTPS webhook signed with HMAC-SHA256. Shared channels (no
    user) get one message per notification fan-out; personal ones (user set) carry that user's
    notifications when their preference enables the kind. URL and signing secret are sealed."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=[(k.value, k.label) for k in CONFIG_KINDS])
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notification_channels",
        help_text="Personal channel of this user; blank for a shared team channel.",
    )
    url = EncryptedTextField(blank=True, default="")
    signing_secret = EncryptedTextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    min_priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.LOW)
    notification_types = models.JSONField(default=list, blank=True, help_text="Types this shared channel receives; empty: all.")
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Circuit breaker (apps/notifications/breaker.py): failed sends in a row, and open until.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    circuit_open_until = models.DateTimeField(null=True, blank=True, editable=False)

    PORTAL_ROLE_ACTIONS = {
        "view": {R.OWNER, R.ADMIN, R.OPERATOR},
        "add": MANAGER_ROLES,
        "change": MANAGER_ROLES,
        "delete": MANAGER_ROLES,
        "test": MANAGER_ROLES,
    }

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="notif_channel_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def get_secret(self, which: str = "url") -> str:
        """The plaintext URL (or `signing_secret`); the only place a channel secret is decrypted."""
        token = getattr(self, which)
        return decrypt(token) if token else ""

    def accepts(self, notification_type: str, priority: str) -> bool:
        if not self.enabled or PRIORITY_RANK[priority] < PRIORITY_RANK[self.min_priority]:
            return False
        return not self.notification_types or notification_type in self.notification_types

    def clean(self) -> None:
        types = self.notification_types
        if not isinstance(types, list) or any(not isinstance(t, str) or not TYPE_RE.match(t) for t in types):
            raise ValidationError({"notification_types": "A list of notification type names."})


class NotificationTemplate(TenantOwnedModel):
    """Django templates for one type (or `*`) and one channel kind (or any): subject, text,
    HTML (email only). Context: `notification`, `recipient`, `tenant`, `base_url`, `items`
    (digests)."""

    notification_type = models.CharField(max_length=64, default=ALL_TYPES, validators=[validate_type])
    channel = models.CharField(max_length=10, choices=ChannelKind.choices, blank=True, default="", help_text="Blank: every channel.")
    subject = models.CharField(max_length=300, default="{{ notification.title }}")
    body_text = models.TextField()
    body_html = models.TextField(blank=True, default="", help_text="Email only; blank: the text, escaped.")

    PORTAL_ROLE_ACTIONS = {"view": {R.OWNER, R.ADMIN, R.OPERATOR}, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["notification_type", "channel"]
        constraints = [models.UniqueConstraint(fields=["tenant", "notification_type", "channel"], name="notif_template_unique")]

    def __str__(self) -> str:
        return f"{self.notification_type} / {self.channel or 'any channel'}"

    def clean(self) -> None:
        from django.template import Template, TemplateSyntaxError

        errors = {}
        for name in ("subject", "body_text", "body_html"):
            try:
                Template(getattr(self, name) or "")
            except TemplateSyntaxError as exc:
                errors[name] = f"Template error: {exc}"
        if errors:
            raise ValidationError(errors)


class Delivery(TenantOwnedModel):
    """The outbox: one row per notification × channel, written with the notification and sent
    by Celery. Pending rows are claimed (`sending`) before the send, so a row is sent once even
    when the sweeper and the original task both enqueue it. A digest delivery has no
    notification; the rows it carries point at it through `digest`."""

    # tenant and recipient are copies of the notification's (a digest's: of the rows it carries),
    # taken from that row in the statement that writes both, whose keys the database checks: no
    # second check per row (db_constraint=False); the ORM still protects and cascades.
    tenant = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, limit_choices_to={"kind": OrgKind.TENANT},
        related_name="notifications_delivery_set", db_constraint=False,
    )
    # written only with its notification (same statement or transaction, never re-pointed), so
    # unchecked too; the ORM cascades a deleted notification (docs/notifications.md, fan-out)
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries", db_constraint=False, db_index=False,
    )
    # notification: covered by notif_delivery_once; recipient: by notif_delivery_rate_idx; channel
    # and digest: partial indexes (most rows have neither)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False,
    )
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    channel = models.ForeignKey(ChannelConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    reason = models.CharField(max_length=12, choices=SuppressReason.choices, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # set only by digests_send, in the transaction that creates the digest: unchecked (a fan-out's
    # 10,000 NULLs each fired the check); the ORM unlinks the items of a deleted digest
    digest = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="items", db_index=False, db_constraint=False)

    PORTAL_ROLE_ACTIONS = {"view": {R.OWNER, R.ADMIN, R.OPERATOR}, "add": set(), "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_delivery_due_idx"),
            models.Index(fields=["recipient", "created_at"], name="notif_delivery_rate_idx"),
            models.Index(fields=["channel"], condition=Q(channel__isnull=False), name="notif_delivery_channel_idx"),
            models.Index(fields=["digest"], condition=Q(digest__isnull=False), name="notif_delivery_digest_idx"),
        ]
        constraints = [
            # once per notification and channel, or per notification and kind for a channel-less
            # row (an e-mail); one index that also serves every lookup by notification (cascades,
            # the retention's in-flight check), so a fan-out writes one entry per delivery, not three
            models.UniqueConstraint(
                F("notification"), Coalesce(F("channel"), Value(0)), Case(When(channel__isnull=True, then=F("kind")), default=Value("")),
                condition=Q(notification__isnull=False), name="notif_delivery_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} delivery {self.pk} ({self.status})"
