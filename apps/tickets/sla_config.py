"""SLA configuration services: the business calendars SLA clocks count in and the SLA policies
(targets per tenant and priority). The admin and the API (`/api/v1/sla-policies/`,
`/api/v1/business-calendars/`) both write through these; owners and admins of the tenant and
platform admins may. Nothing is deleted — a policy is switched off (`is_active`), a calendar
stays while policies use it — so the due times of existing tickets stay explainable. Changes
apply to tickets created or re-prioritised afterwards; the tenant's cached SLA configuration is
invalidated on save (apps/tickets/config.py). Each change is audited (`config.*` events)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.policy import policy
from apps.core.services import require_named_tenant, scoped_save

from .models import BusinessCalendar, SlaPolicy

POLICY_FIELDS = ("name", "priority", "first_response_minutes", "resolution_minutes", "at_risk_percent", "calendar", "is_active")
CALENDAR_FIELDS = ("name", "timezone", "working_hours", "holidays", "is_default")


def _check(obj, *, actor, what: str) -> None:
    action = "change" if obj.pk else "add"
    if actor is not None and not policy.allows(actor, action, type(obj)):
        raise PermissionDenied(f"Only owners and admins of the tenant set {what}s.")
    if obj.pk is None:
        require_named_tenant(obj.tenant_id, actor=actor)


def _apply(obj, fields: dict, allowed: tuple[str, ...], what: str):
    if obj.pk is not None:
        fields.pop("tenant", None)  # a row stays with its tenant
    tenant = fields.pop("tenant", None)
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValidationError(f"Unknown {what} fields: {', '.join(sorted(unknown))}.")
    if tenant is not None:
        obj.tenant_id = getattr(tenant, "pk", tenant)
    for key, value in fields.items():
        setattr(obj, key, value)
    return obj


def sla_policy_save(obj: SlaPolicy, *, actor) -> SlaPolicy:
    """Create or change an SLA policy as it stands (the admin's form filled it in)."""
    _check(obj, actor=actor, what="SLA policy")
    return scoped_save(obj, actor=actor)


def calendar_save(obj: BusinessCalendar, *, actor) -> BusinessCalendar:
    """Create or change a business calendar as it stands (the admin's form filled it in)."""
    _check(obj, actor=actor, what="business calendar")
    return scoped_save(obj, actor=actor)


def sla_policy_create(*, actor, **fields) -> SlaPolicy:
    return sla_policy_save(_apply(SlaPolicy(), fields, POLICY_FIELDS, "SLA policy"), actor=actor)


def sla_policy_update(obj: SlaPolicy, *, actor, **fields) -> SlaPolicy:
    return sla_policy_save(_apply(obj, fields, POLICY_FIELDS, "SLA policy"), actor=actor)


def calendar_create(*, actor, **fields) -> BusinessCalendar:
    return calendar_save(_apply(BusinessCalendar(), fields, CALENDAR_FIELDS, "business calendar"), actor=actor)


def calendar_update(obj: BusinessCalendar, *, actor, **fields) -> BusinessCalendar:
    return calendar_save(_apply(obj, fields, CALENDAR_FIELDS, "business calendar"), actor=actor)
