"""Writes of the dashboard app: refresh the per-tenant summaries, keep KPI targets, run the KPI
checkpoint (a miss raises one alert and opens one backlog ticket per tenant × KPI × period),
recompute account health. Entry points (beat tasks, admin actions, commands) call these."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import OrgKind
from apps.core.policy import policy
from apps.core.services import require_named_tenant, scoped_save

from . import health, metrics
from .choices import CheckpointOutcome, Kpi, KpiPeriod
from .models import AccountHealth, KpiCheckpoint, KpiTarget, TenantSummary

LIVE_TENANT_STATUSES = ("trial", "active", "suspended", "offboarding")


def _tenants(tenant=None):
    from apps.tenants.models import Organization

    qs = Organization.objects.filter(kind=OrgKind.TENANT, status__in=LIVE_TENANT_STATUSES).order_by("pk")
    if tenant is not None:
        qs = qs.filter(pk=getattr(tenant, "pk", tenant))
    return qs


# -- summaries ------------------------------------------------------------------------------
def summary_refresh(*, tenant=None, now: datetime | None = None) -> int:
    """Recompute the summary row of every live tenant (or one); returns how many were written."""
    now = now or timezone.now()
    written = 0
    for org in _tenants(tenant).only("pk"):
        started = time.perf_counter()
        data = metrics.tenant_summary_data(org.pk, now=now)
        ms = int((time.perf_counter() - started) * 1000)
        TenantSummary.objects.update_or_create(tenant_id=org.pk, defaults={"data": data, "computed_at": now, "compute_ms": ms})
        written += 1
    return written


# -- KPI targets ----------------------------------------------------------------------------
def default_targets() -> dict[str, Decimal]:
    return {
        Kpi.SLA_COMPLIANCE: Decimal(str(settings.DASHBOARD_KPI_SLA_COMPLIANCE)),
        Kpi.JOB_SUCCESS: Decimal(str(settings.DASHBOARD_KPI_JOB_SUCCESS)),
        Kpi.AVAILABILITY: Decimal(str(settings.DASHBOARD_KPI_AVAILABILITY)),
    }


def kpi_targets_ensure(*, tenant=None) -> int:
    """Give every live tenant (or one) the default targets it lacks; edits are never overwritten."""
    rows = [
        KpiTarget(tenant_id=org.pk, kpi=kpi, target_percent=value, period=settings.DASHBOARD_KPI_PERIOD)
        for org in _tenants(tenant).only("pk")
        for kpi, value in default_targets().items()
    ]
    return len(KpiTarget.objects.bulk_create(rows, ignore_conflicts=True))


def kpi_target_save(target: KpiTarget, *, actor) -> KpiTarget:
    """Create or change a KPI target (owners/admins of the tenant, platform admins)."""
    action = "change" if target.pk else "add"
    if actor is not None and not policy.allows(actor, action, KpiTarget):
        raise PermissionDenied("Only owners and admins set KPI targets.")
    return scoped_save(target, actor=actor)


KPI_TARGET_FIELDS = ("kpi", "target_percent", "period", "min_samples", "enabled")


def kpi_target_create(*, actor, tenant=None, **fields) -> KpiTarget:
    """A target for a KPI the tenant has none for (the portal's defaults are added by the
    checkpoint run; edit those rather than adding a second one — that is a 400)."""
    unknown = set(fields) - set(KPI_TARGET_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown KPI target fields: {', '.join(sorted(unknown))}.")
    require_named_tenant(tenant, actor=actor)
    return kpi_target_save(KpiTarget(tenant_id=getattr(tenant, "pk", tenant), **fields), actor=actor)


def kpi_target_update(target: KpiTarget, *, actor, **fields) -> KpiTarget:
    """Change a target's percentage, period, minimum samples or switch it off; the next
    checkpoint of a completed period uses the new values (past checkpoints keep theirs)."""
    fields.pop("tenant", None)
    fields.pop("kpi", None)
    unknown = set(fields) - set(KPI_TARGET_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown KPI target fields: {', '.join(sorted(unknown))}.")
    for key, value in fields.items():
        setattr(target, key, value)
    return kpi_target_save(target, actor=actor)


# -- KPI checkpoint --------------------------------------------------------------------------
def last_period(period: str, now: datetime, tz: str = "UTC") -> tuple[datetime, datetime]:
    """The last *completed* period before `now` in the tenant's time zone: [start, end)."""
    local = now.astimezone(ZoneInfo(tz or "UTC"))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == KpiPeriod.DAY:
        end = midnight
        start = end - timedelta(days=1)
    elif period == KpiPeriod.WEEK:
        end = midnight - timedelta(days=local.weekday())
        start = end - timedelta(days=7)
    else:
        end = midnight.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    # re-localise so a DST change inside the period keeps midnights at midnight
    zone = ZoneInfo(tz or "UTC")
    return start.replace(tzinfo=None).replace(tzinfo=zone), end.replace(tzinfo=None).replace(tzinfo=zone)


def kpi_value(tenant_id: int, kpi: str, start: datetime, end: datetime) -> tuple[Decimal | None, int]:
    """(value %, samples) of one KPI of one tenant over [start, end)."""
    if kpi == Kpi.SLA_COMPLIANCE:
        total, breached = metrics.sla_counts(tenant_id, start, end)
        good = total - breached
    elif kpi == Kpi.JOB_SUCCESS:
        total, good = metrics.job_counts(tenant_id, start, end)
    else:
        total, down = metrics.check_counts(tenant_id, start, end)
        good = total - down
    if not total:
        return None, 0
    value = (Decimal(100) * good / total).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return value, total


def kpi_checkpoint_run(*, now: datetime | None = None, tenant=None) -> dict:
    """Evaluate every enabled target for its last completed period, once: a checkpoint row per
    tenant × KPI × period (unique), and for a miss one alert and one backlog ticket."""
    now = now or timezone.now()
    kpi_targets_ensure(tenant=tenant)
    counts = {o.value: 0 for o in CheckpointOutcome}
    counts["skipped"] = 0
    targets = KpiTarget.objects.filter(enabled=True, tenant__in=_tenants(tenant)).select_related("tenant")
    for target in targets:
        start, end = last_period(target.period, now, target.tenant.timezone)
        done = KpiCheckpoint.objects.filter(tenant_id=target.tenant_id, kpi=target.kpi, period=target.period, period_start=start)
        if done.exists():
            counts["skipped"] += 1
            continue
        checkpoint = kpi_checkpoint_record(target=target, start=start, end=end)
        counts[checkpoint.outcome if checkpoint else "skipped"] += 1
    return counts


def kpi_checkpoint_record(*, target: KpiTarget, start: datetime, end: datetime) -> KpiCheckpoint | None:
    """Write the checkpoint of one target and period and act on a miss, in one transaction.
    Returns None when another worker wrote it first (the unique row decides)."""
    value, samples = kpi_value(target.tenant_id, target.kpi, start, end)
    if value is None or samples < target.min_samples:
        outcome = CheckpointOutcome.NO_DATA
    else:
        outcome = CheckpointOutcome.MET if value >= target.target_percent else CheckpointOutcome.MISSED
    try:
        with transaction.atomic():
            checkpoint = KpiCheckpoint(
                tenant_id=target.tenant_id, kpi=target.kpi, period=target.period, period_start=start, period_end=end,
                target_percent=target.target_percent, value_percent=value, samples=samples, outcome=outcome,
            )
            checkpoint.full_clean(validate_unique=False, validate_constraints=False)
            checkpoint.save()
            if outcome == CheckpointOutcome.MISSED:
                _escalate_miss(checkpoint, tenant=target.tenant)
    except IntegrityError:
        return None
    return checkpoint


def _escalate_miss(checkpoint: KpiCheckpoint, *, tenant) -> None:
    """Raise the alert and open the backlog ticket of a missed checkpoint (caller's transaction)."""
    from apps.alerts.choices import AlertType, Severity
    from apps.alerts.services import alert_raise
    from apps.tickets.choices import ActorType, TicketPriority
    from apps.tickets.services import ticket_create

    label = checkpoint.get_kpi_display()
    when = f"{checkpoint.get_period_display().split(' ')[0].lower()} period starting {checkpoint.period_start:%Y-%m-%d}"
    title = f"KPI missed for {tenant.name}: {label} {checkpoint.value_percent}% < {checkpoint.target_percent}% ({when})"
    body = (
        f"The KPI checkpoint found that {label.lower()} of tenant {tenant.name} was {checkpoint.value_percent}% "
        f"over {checkpoint.samples} sample(s) from {checkpoint.period_start:%Y-%m-%d %H:%M} to "
        f"{checkpoint.period_end:%Y-%m-%d %H:%M} ({checkpoint.period_start.tzname()}); the target is "
        f"{checkpoint.target_percent}%. Find the cause, agree on actions and track them here."
    )
    alert, _ = alert_raise(
        tenant=tenant,
        alert_type=AlertType.CUSTOM,
        severity=Severity.CRITICAL if checkpoint.kpi == Kpi.AVAILABILITY else Severity.WARNING,
        title=title,
        message=body,
        resource_type="dashboard.kpicheckpoint",
        resource_id=checkpoint.pk,
        labels={"kpi": checkpoint.kpi, "period": checkpoint.period, "period_start": checkpoint.period_start.date().isoformat()},
        metadata={"checkpoint_id": checkpoint.pk, "value_percent": str(checkpoint.value_percent), "target_percent": str(checkpoint.target_percent)},
    )
    # The system acts as the platform; the routing matrix sends platform tickets to the tenant
    # (there is no platform → platform route), tagged "backlog" for the platform's queue.
    ticket = ticket_create(
        actor=None,
        subject=title[:200],
        message=body,
        priority=TicketPriority.HIGH,
        target_type=ActorType.TENANT,
        tenant=tenant,
        tags=["kpi", "backlog", checkpoint.kpi],
        metadata={"kpi_checkpoint_id": checkpoint.pk, "kpi": checkpoint.kpi, "period_start": checkpoint.period_start.isoformat()},
    )
    checkpoint.alert, checkpoint.ticket = alert, ticket
    checkpoint.save(update_fields=["alert", "ticket", "updated_at"])


# -- account health --------------------------------------------------------------------------
def health_recompute(*, tenant=None, now: datetime | None = None) -> int:
    """Recompute the health row of every live tenant (or one) and of each of its customers."""
    now = now or timezone.now()
    written = 0
    for org in _tenants(tenant).only("pk"):
        rows = [(None, metrics.tenant_health_metrics(org.pk, now=now))]
        rows += list(metrics.customer_health_metrics(org.pk, now=now).items())
        with transaction.atomic():
            for customer_id, values in rows:
                value, grade, reasons = health.score(values)
                AccountHealth.objects.update_or_create(
                    tenant_id=org.pk, customer_id=customer_id,
                    defaults={"score": value, "grade": grade, "reasons": reasons, "metrics": values, "computed_at": now},
                )
                written += 1
    return written
