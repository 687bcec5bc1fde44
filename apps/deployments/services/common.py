"""Helpers shared by the deployments services: permission checks, event payloads, tenant policy."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied

from apps.core.policy import policy


def require(actor, action: str, obj, message: str) -> None:
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(message)


def tenant_policy(tenant) -> dict:
    """The tenant's deployment settings (`Organization.settings["deployments"]`) over the defaults:
    four eyes for destroy and for production upgrades, approval expiry in hours."""
    conf = dict((getattr(tenant, "settings", None) or {}).get("deployments") or {})
    return {
        "approve_destroy": bool(conf.get("approve_destroy", True)),
        "approve_production_upgrade": bool(conf.get("approve_production_upgrade", True)),
        "approval_ttl_hours": float(conf.get("approval_ttl_hours", settings.DEPLOYMENTS_APPROVAL_TTL_HOURS)),
    }


def operation_payload(op, **extra) -> dict:
    payload = {
        "id": op.pk,
        "object_type": "deployments.operation",
        "title": f"{op.get_operation_display()} of {op.instance.name} {op.get_status_display().lower()}",
        "url": f"/admin/deployments/operation/{op.pk}/change/",
        "instance_id": op.instance_id,
        "instance_name": op.instance.name,
        "environment": op.instance.environment,
        "operation": op.operation,
        "status": op.status,
        "strategy": op.strategy,
        "parameters": op.parameters,
        "triggered_by_id": op.triggered_by_id,
        "trigger": op.trigger,
        "from_version": op.from_version,
        "job_run_ids": op.job_run_ids if op.pk else [],
    }
    payload.update(extra)
    return payload
