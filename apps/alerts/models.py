"""Models of the alerts app: alerts with per-recipient state, rules, subscriptions, silences,
inhibition rules, escalation policies and ingestion tokens (see DESIGN.md, "alerts")."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, Role
from apps.core.models import PortalManager, TenantOwnedModel, TimeStampedModel
from apps.core.tenancy import Acting

from .choices import AlertSource, AlertStatus, AlertType, RuleType, RunbookStatus, Severity
from .matching import validate_matchers
from .schemas import ACTIONS_SCHEMA, ALERT_CONFIG_SCHEMA, STEPS_SCHEMA, validate_conditions, validate_json

R = Role
RESPONDERS = frozenset({R.OWNER, R.ADMIN, R.OPERATOR, R.SUPPORT_AGENT})
WRITERS = frozenset({R.OWNER, R.ADMIN, R.OPERATOR})


class Alert(TenantOwnedModel):
    """One alert: raised by an event, a rule, a built-in check or ingestion, deduplicated by
    `fingerprint` while open (a partial unique index on tenant + fingerprint for firing and
    acknowledged rows), assigned to one user or broadcast to the tenant's staff (assigned_to
    empty). Resolved rows stay as history until `expires_at` or the retention period."""

    # Ingestion writes thousands of rows a second: every index costs, so the single-column
    # indexes Django would add (tenant, created_at, each nullable FK) are left out; the
    # composite indexes below start with tenant, but for the two partial ones of fingerprints.
    tenant = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, limit_choices_to={"kind": "tenant"},
        related_name="alerts_alert_set", db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    alert_type = models.CharField(max_length=24, choices=AlertType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=14, choices=AlertStatus.choices, default=AlertStatus.FIRING)
    source = models.CharField(max_length=10, choices=AlertSource.choices, default=AlertSource.EVENT)
    title = models.CharField(max_length=300)
    message = models.TextField(blank=True, default="")
    content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    object_id = models.CharField(max_length=64, blank=True, default="")
    resource_type = models.CharField(max_length=100, blank=True, default="")
    resource_id = models.CharField(max_length=64, blank=True, default="")
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    generator_url = models.CharField(max_length=1000, blank=True, default="")
    fingerprint = models.CharField(max_length=64)
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # The source's own start of the current occurrence (Alertmanager's startsAt): a retried
    # delivery with the same start is not a new occurrence.
    starts_at = models.DateTimeField(null=True, blank=True)
    # When the alert resolves by itself unless seen again (endsAt / resolve timeout / rule).
    ends_at = models.DateTimeField(null=True, blank=True)
    silenced = models.BooleanField(default=False)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_alerts", db_index=False,
        help_text="Empty: broadcast to the tenant's staff.",
    )
    rule = models.ForeignKey("alerts.AlertRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", db_index=False)
    escalation_policy = models.ForeignKey("alerts.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", db_index=False)
    escalation_step = models.PositiveSmallIntegerField(default=0)
    escalation_round = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # DESIGN: the link to the incident's ticket lives on the alert (alerts sit above tickets).
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", db_index=False)

    objects = PortalManager()

    PORTAL_ROLE_ACTIONS = {
        "view": STAFF_ROLES,
        "add": WRITERS,
        "change": WRITERS,
        "delete": MANAGER_ROLES,
        "acknowledge": RESPONDERS,
        "resolve": RESPONDERS,
        "read": STAFF_ROLES,
        "dismiss": STAFF_ROLES,
        "ingest": WRITERS,
        "broadcast": MANAGER_ROLES,
        "open_ticket": RESPONDERS,
        "run_runbook": WRITERS,
    }

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            # Led by fingerprint (which already hashes the tenant): under tenant skew every index led
            # by tenant looks as cheap to the planner, and a probe then walks the tenant's rows.
            models.UniqueConstraint(
                fields=["fingerprint", "tenant"],
                condition=~Q(status="resolved"),
                name="alerts_alert_open_fingerprint",
            ),
        ]
        indexes = [
            # "my unread": alerts of a tenant for a user (or broadcast), newest first
            models.Index(fields=["tenant", "assigned_to", "-last_seen"], name="alerts_mine_idx"),
            models.Index(fields=["tenant", "status", "-last_seen"], name="alerts_status_idx"),
            models.Index(fields=["tenant", "alert_type", "severity"], name="alerts_type_sev_idx"),
            # "by resource": only rows that name one (ingested alerts do not, and skip the index;
            # a filter on a resource type proves resource_type <> '')
            models.Index(fields=["tenant", "resource_type", "resource_id"], condition=~Q(resource_type=""), name="alerts_resource_idx"),
            models.Index(fields=["next_escalation_at"], condition=Q(next_escalation_at__isnull=False), name="alerts_escalation_due_idx"),
            models.Index(fields=["ends_at"], condition=~Q(status="resolved") & Q(ends_at__isnull=False), name="alerts_autoresolve_idx"),
            models.Index(fields=["expires_at"], condition=Q(expires_at__isnull=False), name="alerts_expiry_idx"),
            # History of a fingerprint: the open row is found through the unique index above, the
            # resolved ones through this one, so a new (firing) row is written to one index of
            # the two; a lookup of every row of a fingerprint asks both (services/filters).
            # Led by fingerprint, as the open unique index above.
            models.Index(fields=["fingerprint", "tenant", "-last_seen"], condition=Q(status="resolved"), name="alerts_resolved_fp_idx"),
            models.Index(fields=["ticket"], condition=Q(ticket__isnull=False), name="alerts_ticket_idx"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    @classmethod
    def of_fingerprint(cls, tenant_id: int, fingerprint: str) -> models.QuerySet:
        """The tenant's rows of one fingerprint. The tenant is compared as `tenant_id + 0`, which
        no index serves, so the planner takes a fingerprint-led index: with statistics that have
        not seen a new tenant, every index led by tenant_id looks as cheap (docs/alerts.md)."""
        return cls.objects.alias(tenant_probe=F("tenant_id") + 0).filter(tenant_probe=tenant_id, fingerprint=fingerprint)

    @property
    def is_open(self) -> bool:
        return self.status != AlertStatus.RESOLVED

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Tenant admins and owners see every alert of their tenant; other staff only alerts
        assigned to them and broadcast alerts (platform staff see all)."""
        queryset = super().scope_queryset(queryset, ctx, action)
        if ctx.is_platform or ctx.role in MANAGER_ROLES:
            return queryset
        return queryset.filter(Q(assigned_to_id=ctx.user_id) | Q(assigned_to__isnull=True))


class AlertRecipientState(models.Model):
    """Per-person state of an alert (read, dismissed), so a broadcast alert is read or
    dismissed by each member separately."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="recipient_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "user"], name="alerts_state_unique")]
        indexes = [models.Index(fields=["user", "alert"], name="alerts_state_user_idx")]

    def __str__(self) -> str:
        return f"state of alert {self.alert_id} for user {self.user_id}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Only the person's own rows, of alerts they can see."""
        return queryset.filter(user_id=ctx.user_id, alert__in=Alert.scope_queryset(Alert.objects.all(), ctx, "view"))


class AlertRule(TenantOwnedModel):
    """A rule that raises alerts: `sla` (tunes SLA alerts by priority), `threshold` (a count
    over a window), `event` (any published event, optionally matching payload keys) or
    `schedule` (cron). Conditions, alert config and actions are JSON validated by schemas."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, default="")
    rule_type = models.CharField(max_length=10, choices=RuleType.choices)
    enabled = models.BooleanField(default=True)
    conditions = models.JSONField(default=dict)
    alert_config = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list, blank=True)
    auto_resolve_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Resolve when not seen again for this long.")
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alerts_rule_name_per_tenant")]
        indexes = [models.Index(fields=["tenant", "rule_type", "enabled"], name="alerts_rule_type_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_conditions(self.rule_type, self.conditions)
        validate_json(self.alert_config, ALERT_CONFIG_SCHEMA, field="alert_config")
        validate_json(self.actions, ACTIONS_SCHEMA, field="actions")


class AlertSubscription(TenantOwnedModel):
    """A person subscribes to an alert type on some channels (and to its acknowledgements and
    resolutions). Staff manage their own; tenant admins everyone's."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions")
    alert_type = models.CharField(max_length=24, choices=AlertType.choices)
    enabled = models.BooleanField(default=True)
    channels = models.JSONField(default=list, blank=True)
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    notify_on_acknowledge = models.BooleanField(default=False)
    notify_on_resolve = models.BooleanField(default=True)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": STAFF_ROLES, "change": STAFF_ROLES, "delete": STAFF_ROLES}

    class Meta:
        ordering = ["alert_type"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user", "alert_type"], name="alerts_subscription_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.alert_type}"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        queryset = super().scope_queryset(queryset, ctx, action)
        if ctx.is_platform or ctx.role in MANAGER_ROLES:
            return queryset
        return queryset.filter(user_id=ctx.user_id)

    def clean(self) -> None:
        from .schemas import _CHANNELS

        validate_json(self.channels, _CHANNELS, field="channels")


class Silence(TenantOwnedModel):
    """Mutes alerts whose labels match every matcher between `starts_at` and `ends_at` (as in
    Alertmanager): silenced alerts are stored but notify nobody."""

    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reminded_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": WRITERS, "change": WRITERS, "delete": WRITERS}

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["tenant", "ends_at"], name="alerts_silence_active_idx")]

    def __str__(self) -> str:
        return ", ".join(f"{m.get('name')}{m.get('op', '=')}{m.get('value')!r}" for m in self.matchers or []) or "silence"

    def clean(self) -> None:
        validate_matchers(self.matchers)
        if self.ends_at and self.starts_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "A silence must end after it starts."})

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.starts_at <= at < self.ends_at


class InhibitRule(TenantOwnedModel):
    """Alertmanager's inhibition: while an alert matching `source_matchers` fires, alerts
    matching `target_matchers` whose `equal` labels have the same values notify nobody."""

    name = models.CharField(max_length=120)
    source_matchers = models.JSONField(default=list)
    target_matchers = models.JSONField(default=list)
    equal = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alerts_inhibit_name_per_tenant")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_matchers(self.source_matchers, field="source_matchers")
        validate_matchers(self.target_matchers, field="target_matchers")
        if not isinstance(self.equal, list) or not all(isinstance(x, str) and x for x in self.equal):
            raise ValidationError({"equal": "Give a list of label names, e.g. [\"instance\"]."})


class EscalationPolicy(TenantOwnedModel):
    """Ordered steps: while an alert stays unacknowledged, after each step's `wait_minutes` the
    step's users/roles are notified and the next step is armed; after the last step the policy
    repeats `repeat` more times. Acknowledging or resolving stops it."""

    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    alert_types = models.JSONField(default=list, blank=True, help_text="Empty: every type.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    steps = models.JSONField(default=list)
    repeat = models.PositiveSmallIntegerField(default=0)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="alerts_policy_name_per_tenant")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_json(self.steps, STEPS_SCHEMA, field="steps")
        self._check_schedules()
        validate_json(self.alert_types, {"type": "array", "items": {"enum": list(AlertType.values)}, "uniqueItems": True}, field="alert_types")


    def _check_schedules(self) -> None:
        """Steps may page the on-call person of schedules of the policy's own tenant only."""
        from apps.oncall.models import Schedule

        wanted = {i for step in self.steps for i in step.get("oncall_schedule_ids", [])}
        if not wanted or self.tenant_id is None:
            return
        found = set(Schedule.objects.filter(tenant_id=self.tenant_id, pk__in=wanted).values_list("pk", flat=True))
        if wanted - found:
            raise ValidationError({"steps": f"No on-call schedule of this tenant has the id(s) {sorted(wanted - found)}."})


class IngestToken(TenantOwnedModel):
    """A per-tenant token for the ingestion endpoints (Alertmanager's webhook sends it as
    `Authorization: Bearer opa_…`). Only a SHA-256 hash is stored; the token is shown once."""

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {"view": MANAGER_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RunbookRequest(TenantOwnedModel):
    """A runbook job run on behalf of an alert (and its ticket): the parameters and targets
    mapped from the alert's labels, an optional approval by a second person, the JobRun it
    started and the summary posted back to the ticket and the alert."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="runbook_requests")
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey("targets.Job", on_delete=models.CASCADE, related_name="+")
    target_ids = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunbookStatus.choices, default=RunbookStatus.QUEUED)
    requires_approval = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    run = models.OneToOneField("targets.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="runbook_request")
    summary = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": WRITERS, "change": WRITERS, "delete": MANAGER_ROLES,
                           "approve": WRITERS, "reject": WRITERS}

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="alerts_runbook_status_idx")]

    def __str__(self) -> str:
        return f"runbook {self.job_id} for alert {self.alert_id} ({self.status})"


__all__ = [
    "Alert", "AlertRecipientState", "AlertRule", "AlertSubscription", "Silence", "InhibitRule",
    "EscalationPolicy", "IngestToken", "RunbookRequest", "TimeStampedModel",
]
