"""What ticket services need to know about a tenant, read once and kept in the cache.

Opening a ticket needs the tenant (slug, time zone, `settings["tickets"]`, `settings["sla"]`), its
active SLA policy per priority with the policy's business calendar, and the tenant's default
calendar: three queries whose answer changes a few times a year. `tenant_config(tenant_id)` reads
them together and keeps the result per process in core's `ProcessMemo` (apps/core/cache.py), one
scope per tenant: saving or deleting the tenant, an SLA policy or a calendar bumps the tenant's
version token (`invalidate_tenant_config`, connected in `apps.py`); `CONFIG_TTL` bounds a bump
lost while Redis was unreachable (then every call reads PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.core.cache import ProcessMemo

from .choices import AssignmentMode, TicketPriority
from .sla import Calendar, SlaTargets

CONFIG_TTL = 60
_memo = ProcessMemo("tickets-tenant-config", ttl=CONFIG_TTL)


@dataclass(frozen=True)
class TenantConfig:
    """A tenant's ticket configuration: assignment mode and the SLA targets of every priority."""

    tenant_id: int
    slug: str
    timezone: str
    assignment: str = AssignmentMode.OFF
    only_available_agents: bool = False
    targets: dict[str, SlaTargets] = field(default_factory=dict)

    def sla_targets(self, priority: str) -> SlaTargets:
        return self.targets[str(TicketPriority(priority).value)]


def tenant_config(tenant_id: int) -> TenantConfig:
    """The configuration of a tenant: kept in this process while the tenant's token is unchanged."""
    return _memo.get(tenant_id, lambda: _load(tenant_id), scope=tenant_id)


def invalidate_tenant_config(tenant_id: int | None) -> None:
    """Give a tenant's configuration a new token now and once more after the current commit."""
    if tenant_id:
        _memo.bump(tenant_id)


def _load(tenant_id: int) -> TenantConfig:
    from apps.tenants.models import Organization

    from .models import BusinessCalendar, SlaPolicy

    row = Organization.objects.filter(pk=tenant_id).values("slug", "timezone", "settings").first()
    if row is None:
        raise Organization.DoesNotExist(f"No tenant {tenant_id}.")
    tz = row["timezone"] or "UTC"
    settings = row["settings"] if isinstance(row["settings"], dict) else {}
    default_row = BusinessCalendar.objects.filter(tenant_id=tenant_id, is_default=True).first()
    default_cal = Calendar.from_model(default_row, tz) if default_row else Calendar.always(tz)
    policies = {p.priority: p for p in SlaPolicy.objects.filter(tenant_id=tenant_id, is_active=True).select_related("calendar")}
    targets = {}
    for priority in TicketPriority.values:
        policy = policies.get(priority)
        if policy is not None:
            cal = Calendar.from_model(policy.calendar, tz) if policy.calendar_id else default_cal
            targets[priority] = SlaTargets(policy.pk, policy.first_response_minutes, policy.resolution_minutes, policy.at_risk_percent, cal)
        else:
            targets[priority] = _default_targets(settings, priority, default_cal)
    tickets = settings.get("tickets") if isinstance(settings.get("tickets"), dict) else {}
    mode = tickets.get("assignment", AssignmentMode.OFF)
    return TenantConfig(
        tenant_id=tenant_id,
        slug=row["slug"],
        timezone=tz,
        assignment=mode if mode in AssignmentMode.values else AssignmentMode.OFF,
        only_available_agents=bool(tickets.get("only_available_agents", False)),
        targets=targets,
    )


def _default_targets(settings: dict, priority: str, calendar: Calendar) -> SlaTargets:
    """Without a policy: `settings["sla"][priority]` of the tenant, else no SLA."""
    sla = settings.get("sla") if isinstance(settings.get("sla"), dict) else {}
    defaults = sla.get(priority) or {}
    try:
        fr = int(defaults["first_response_minutes"]) if "first_response_minutes" in defaults else None
        res = int(defaults["resolution_minutes"]) if "resolution_minutes" in defaults else None
        pct = int(defaults.get("at_risk_percent", 80))
    except (TypeError, ValueError, AttributeError):
        fr = res = None
        pct = 80
    return SlaTargets(None, fr, res, pct, calendar)


def _changed(sender, instance, **kwargs) -> None:
    """post_save/post_delete of a tenant, an SLA policy or a calendar (connected in apps.py)."""
    from apps.core.choices import OrgKind

    if getattr(instance, "tenant_id", None):
        invalidate_tenant_config(instance.tenant_id)
    elif getattr(instance, "kind", None) == OrgKind.TENANT:
        invalidate_tenant_config(instance.pk)


def connect_invalidation() -> None:
    """Keep the cache honest whoever writes the rows (services, admin, shell, fixtures): a
    signal is the one hook that sees them all, and it only deletes a cache entry."""
    from django.db.models.signals import post_delete, post_save

    from .models import BusinessCalendar, SlaPolicy

    for model in ("tenants.Organization", SlaPolicy, BusinessCalendar):
        post_save.connect(_changed, sender=model, dispatch_uid=f"tickets-config-save-{model}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"tickets-config-delete-{model}")
