"""Endpoints the portal checks (HTTP/HTTPS, TCP, heartbeat push URLs), their check results and
the trend rules that warn before a hard failure."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.choices import Role
from apps.core.models import PortalManager, TenantOwnedModel

from .choices import EndpointKind, EndpointStatus, MatchKind, ResultStatus, TrendKind, TrendSeverity, TrendState

R = Role


class Endpoint(TenantOwnedModel):
    """One thing to watch. Network kinds are checked by the dispatcher when `next_check_at` is
    due; heartbeat endpoints are pinged by the watched job at `/ping/<ping_id>` and go down when
    no ping arrived within `interval_seconds` + `grace_seconds`.

    Status: `consecutive_failures` ≥ `failure_threshold` → down; a successful check slower than
    `expected_response_ms` `degraded_threshold` times in a row (or a TLS certificate expiring
    within `tls_expiry_warning_days`) → degraded; a fast success → up. `notified_status` is the
    last status published as an event, so a failure during a maintenance window is published
    once the window ends.
    """

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=EndpointKind.choices, default=EndpointKind.HTTPS)
    host = models.CharField(max_length=255, blank=True, default="")
    port = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(65535)])
    path = models.CharField(max_length=1000, blank=True, default="/")
    method = models.CharField(max_length=7, default="GET", choices=[(m, m) for m in ("GET", "HEAD", "POST")])
    verify_tls = models.BooleanField(default=True)
    expected_status = models.PositiveIntegerField(default=200, validators=[MinValueValidator(100), MaxValueValidator(599)])
    expected_response_ms = models.PositiveIntegerField(default=1000, help_text="Slower successful checks count as slow.")
    match_kind = models.CharField(max_length=16, choices=MatchKind.choices, default=MatchKind.NONE, blank=True)
    match_keyword = models.CharField(max_length=500, blank=True, default="")
    match_json_path = models.CharField(max_length=300, blank=True, default="", help_text="e.g. $.status or data.items[0].state")
    match_json_value = models.CharField(max_length=500, blank=True, default="")
    tls_expiry_warning_days = models.PositiveIntegerField(default=14)
    interval_seconds = models.PositiveIntegerField(default=60)
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.5), MaxValueValidator(120)])
    grace_seconds = models.PositiveIntegerField(default=60, help_text="Heartbeat: lateness allowed after the period.")
    failure_threshold = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1), MaxValueValidator(100)])
    degraded_threshold = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(100)])
    enabled = models.BooleanField(default=True)
    labels = models.JSONField(default=dict, blank=True, help_text='e.g. {"instance": "db-1", "target": "web-1"}')
    # An optional link to what the endpoint watches (a target, an instance) by content type + id:
    # those apps are at the same or a higher layer, so no foreign key to them.
    linked_type = models.CharField(max_length=100, blank=True, default="", help_text='"targets.target", "deployments.instance"')
    linked_id = models.PositiveBigIntegerField(null=True, blank=True)

    ping_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    status = models.CharField(max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.UNKNOWN)
    status_since = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    notified_status = models.CharField(max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.UNKNOWN)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_slow = models.PositiveIntegerField(default=0)
    in_maintenance = models.BooleanField(default=False)
    next_check_at = models.DateTimeField(null=True, blank=True)
    last_scheduled_at = models.DateTimeField(null=True, blank=True, editable=False,
                                             help_text="The slot of the last recorded scheduled check (a redelivered batch skips it).")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_start_at = models.DateTimeField(null=True, blank=True)
    tls_expires_at = models.DateTimeField(null=True, blank=True)

    PARTNER_VISIBLE = True
    PORTAL_ROLE_ACTIONS = {
        "check": {R.OWNER, R.ADMIN, R.OPERATOR},
        "pause": {R.OWNER, R.ADMIN, R.OPERATOR},
    }

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["enabled", "next_check_at"], name="monitoring_endpoint_due_idx"),
            models.Index(fields=["tenant", "status"], name="monitoring_endpoint_status_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="monitoring_endpoint_name_uniq")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        minimum = settings.MONITORING_MIN_INTERVAL_SECONDS
        if self.interval_seconds is not None and self.interval_seconds < minimum:
            errors["interval_seconds"] = f"The interval is at least {minimum} seconds."
        if self.kind != EndpointKind.HEARTBEAT:
            if not self.host:
                errors["host"] = "Give the host name or address to check."
            elif any(c in self.host for c in "/ @?#"):
                errors["host"] = "Give a bare host name or address (no scheme, path or credentials)."
            if self.kind == EndpointKind.TCP and not self.port:
                errors["port"] = "A TCP check needs a port."
            if self.timeout_seconds and self.interval_seconds and self.timeout_seconds >= self.interval_seconds:
                errors["timeout_seconds"] = "The timeout must be shorter than the interval."
        if self.path and not self.path.startswith("/"):
            errors["path"] = "The path starts with /."
        if self.match_kind in (MatchKind.KEYWORD, MatchKind.KEYWORD_ABSENT) and not self.match_keyword:
            errors["match_keyword"] = "Give the keyword to look for."
        if self.match_kind == MatchKind.JSON_PATH:
            from .checkers import parse_json_path

            try:
                parse_json_path(self.match_json_path)
            except ValueError as exc:
                errors["match_json_path"] = str(exc)
        if not isinstance(self.labels, dict):
            errors["labels"] = "Labels are an object of strings."
        if errors:
            raise ValidationError(errors)

    @property
    def url(self) -> str:
        if self.kind == EndpointKind.TCP:
            return f"tcp://{self.host}:{self.port}"
        if self.kind == EndpointKind.HEARTBEAT:
            return f"/ping/{self.ping_id}"
        port = f":{self.port}" if self.port else ""
        return f"{self.kind}://{self.host}{port}{self.path or '/'}"

    @property
    def heartbeat_deadline(self):
        if self.last_ping_at is None:
            return None
        return self.last_ping_at + timedelta(seconds=self.interval_seconds + self.grace_seconds)


class CheckResult(models.Model):
    """One check (or heartbeat ping) of an endpoint. Kept `MONITORING_RESULT_RETENTION_DAYS`."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="results")
    checked_at = models.DateTimeField()
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="When the check was due (lateness = checked − scheduled).")
    status = models.CharField(max_length=10, choices=ResultStatus.choices)
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    in_maintenance = models.BooleanField(default=False)

    objects = PortalManager()

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["endpoint", "-checked_at"], name="monitoring_result_ep_idx"),
            models.Index(fields=["checked_at"], name="monitoring_result_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.status} @ {self.checked_at:%H:%M:%S}"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        return queryset.filter(endpoint__in=Endpoint.scope_queryset(Endpoint.objects.all(), ctx, action))

    PARTNER_VISIBLE = True


class TrendRule(TenantOwnedModel):
    """A degradation rule on one endpoint, evaluated by the beat task `monitoring.evaluate_trends`
    from what the checks stored — so something can happen before a hard failure.

    `latency_p95`: the 95th percentile of the latencies of the endpoint's successful checks in the
    last `window_minutes` (results inside maintenance windows left out) is over `threshold_ms`,
    with at least `min_samples` results → breached; at or under the budget → ok. `tls_expiry`:
    the certificate the endpoint's HTTPS checks read (its notAfter, `Endpoint.tls_expires_at`)
    expires within `days` → breached; renewed → ok. Too little data changes nothing.

    A move to breached publishes `endpoint.trend_breached`, back to ok `endpoint.trend_recovered`;
    the alerts app raises and resolves an `endpoint_trend` alert whose rules' actions open a
    ticket or run a job (docs/incident.md).
    """

    name = models.CharField(max_length=120)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="trend_rules")
    kind = models.CharField(max_length=16, choices=TrendKind.choices)
    threshold_ms = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)],
                                               help_text="latency_p95: the p95 budget in milliseconds.")
    window_minutes = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
                                                 help_text="latency_p95: the window the p95 is computed over.")
    min_samples = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)],
                                              help_text="latency_p95: fewer results in the window decide nothing.")
    days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(365)],
                                       help_text="tls_expiry: breached when the certificate expires within this many days.")
    severity = models.CharField(max_length=10, choices=TrendSeverity.choices, default=TrendSeverity.WARNING)
    labels = models.JSONField(default=dict, blank=True, help_text='Added to the alert\'s labels, e.g. {"service": "web"}.')
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=TrendState.choices, default=TrendState.UNKNOWN, editable=False)
    state_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False, help_text="p95 in ms, or days left.")
    last_samples = models.PositiveIntegerField(null=True, blank=True, editable=False)
    last_reason = models.CharField(max_length=500, blank=True, default="", editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False)

    PARTNER_VISIBLE = True
    PORTAL_ROLE_ACTIONS = {"evaluate": {R.OWNER, R.ADMIN, R.OPERATOR}}

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="monitoring_trendrule_name_uniq")]
        indexes = [models.Index(fields=["enabled", "kind"], name="monitoring_trendrule_due_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        errors = {}
        if self.endpoint_id and self.tenant_id and self.endpoint.tenant_id != self.tenant_id:
            errors["endpoint"] = "The endpoint belongs to another tenant."
        if self.kind == TrendKind.LATENCY_P95:
            if not self.threshold_ms:
                errors["threshold_ms"] = "Give the p95 latency budget in milliseconds."
            if self.endpoint_id and self.endpoint.kind == EndpointKind.HEARTBEAT:
                errors["endpoint"] = "A heartbeat has no response time; pick an HTTP(S) or TCP endpoint."
        if self.kind == TrendKind.TLS_EXPIRY:
            if not self.days:
                errors["days"] = "Give the number of days before expiry that should raise the alarm."
            if self.endpoint_id and self.endpoint.kind != EndpointKind.HTTPS:
                errors["endpoint"] = "Only HTTPS endpoints have a certificate to watch."
        if not isinstance(self.labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in (self.labels or {}).items()):
            errors["labels"] = "Labels are an object of strings, e.g. {\"service\": \"web\"}."
        if errors:
            raise ValidationError(errors)
