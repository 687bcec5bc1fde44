"""Models of the dashboard app: the per-tenant summary the admin index reads, KPI targets and
their checkpoints (one row per tenant × KPI × period), and account health scores."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES
from apps.core.models import TenantOwnedModel

from .choices import CheckpointOutcome, HealthGrade, Kpi, KpiPeriod


class TenantSummary(TenantOwnedModel):
    """Counters of one tenant, refreshed by the beat task `dashboard.refresh_summaries`.

    `data` holds additive figures only (counts, sums of seconds), never percentages, so the
    platform's dashboard is the plain sum over the tenant rows it may see (see selectors)."""

    tenant = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="dashboard_summary", limit_choices_to={"kind": "tenant"}
    )
    data = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)
    compute_ms = models.PositiveIntegerField(default=0, help_text="How long the last refresh of this tenant took.")

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": frozenset(), "change": frozenset(), "delete": frozenset(), "refresh": MANAGER_ROLES}

    class Meta:
        verbose_name_plural = "tenant summaries"

    def __str__(self) -> str:
        return f"summary of tenant {self.tenant_id} @ {self.computed_at:%Y-%m-%d %H:%M}"


class KpiTarget(TenantOwnedModel):
    """A tenant's target for one KPI (e.g. SLA compliance ≥ 95 % per week), evaluated by the
    checkpoint task once per completed period. Defaults come from settings (`DASHBOARD_KPI_*`)."""

    kpi = models.CharField(max_length=20, choices=Kpi.choices)
    target_percent = models.DecimalField(
        max_digits=6, decimal_places=3, validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]
    )
    period = models.CharField(max_length=8, choices=KpiPeriod.choices, default=KpiPeriod.WEEK)
    min_samples = models.PositiveIntegerField(default=1, help_text="Fewer samples in a period means no data, not a miss.")
    enabled = models.BooleanField(default=True)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["tenant_id", "kpi"]
        verbose_name = "KPI target"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kpi"], name="dashboard_one_target_per_kpi"),
            models.CheckConstraint(condition=Q(target_percent__gte=0, target_percent__lte=100), name="dashboard_target_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kpi_display()} ≥ {self.target_percent}% ({self.get_period_display().lower()})"

    def clean(self) -> None:
        if self.target_percent is not None and not (0 <= self.target_percent <= 100):
            raise ValidationError({"target_percent": "A target is a percentage between 0 and 100."})


class KpiCheckpoint(TenantOwnedModel):
    """The evaluation of one KPI of one tenant for one completed period. The unique row per
    tenant × KPI × period start is what makes a miss raise one alert and one ticket, ever."""

    kpi = models.CharField(max_length=20, choices=Kpi.choices)
    period = models.CharField(max_length=8, choices=KpiPeriod.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    target_percent = models.DecimalField(max_digits=6, decimal_places=3)
    value_percent = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    samples = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=8, choices=CheckpointOutcome.choices)
    alert = models.ForeignKey("alerts.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ticket = models.ForeignKey("tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": frozenset(), "change": frozenset(), "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["-period_start", "tenant_id", "kpi"]
        verbose_name = "KPI checkpoint"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kpi", "period", "period_start"], name="dashboard_one_checkpoint_per_period"),
        ]
        indexes = [models.Index(fields=["tenant", "-period_start"], name="dashboard_checkpoint_idx")]

    def __str__(self) -> str:
        return f"{self.get_kpi_display()} {self.period_start:%Y-%m-%d}: {self.outcome}"


class AccountHealth(TenantOwnedModel):
    """Account health of a tenant (customer empty) or of one of its customers: a score 0–100
    from the last 30 days with the reasons that lowered it. Recomputed by `dashboard.recompute_health`."""

    customer = models.ForeignKey("tenants.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    grade = models.CharField(max_length=10, choices=HealthGrade.choices)
    reasons = models.JSONField(default=list, blank=True, help_text="What lowered the score: [{factor, count, points, text}].")
    metrics = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": frozenset(), "change": frozenset(), "delete": MANAGER_ROLES, "recompute": MANAGER_ROLES}

    class Meta:
        ordering = ["score", "tenant_id"]
        verbose_name = "account health"
        verbose_name_plural = "account health"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], condition=Q(customer__isnull=True), name="dashboard_one_tenant_health"),
            models.UniqueConstraint(fields=["customer"], condition=Q(customer__isnull=False), name="dashboard_one_customer_health"),
            models.CheckConstraint(condition=Q(score__lte=100), name="dashboard_health_score_0_100"),
        ]
        indexes = [models.Index(fields=["tenant", "score"], name="dashboard_health_score_idx")]

    def __str__(self) -> str:
        who = f"customer {self.customer}" if self.customer_id else f"tenant {self.tenant}"
        return f"{who}: {self.score}"
