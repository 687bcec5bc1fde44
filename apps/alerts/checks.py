"""Built-in checks and rule evaluation.

The checks that read tickets take their input as plain rows (a small protocol) and are wired to
`apps.tickets.selectors` by `checks_tickets_run` (beat tasks `alerts.check_workload`,
`alerts.check_unassigned_critical`):
- `check_agent_workload(tenant=…, workloads=[{"agent_id", "open_tickets", "name"?}])`
- `check_unassigned_critical(tenant=…, tickets=[{"id", "title", "url"?, "created_at"?}])`
Each raises one alert per offending agent/ticket (deduplicated) and resolves the ones that are
no longer offending.
"""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Iterable, Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .choices import AlertSource, AlertStatus, AlertType, RuleType, Severity
from .matching import matches_all
from .models import Alert, AlertRule
from .notify import with_labels
from .services import alert_raise, alerts_resolve_for_resource


def _get(row, key, default=None):
    if isinstance(row, Mapping):
        return row.get(key, default)
    return getattr(row, key, default)


def _tenant_setting(tenant, key: str, default: int) -> int:
    value = (getattr(tenant, "settings", None) or {}).get(key)
    return int(value) if isinstance(value, (int, float)) and value > 0 else default


def _resolve_missing(tenant, alert_type: str, resource_type: str, keep: set[str]) -> int:
    stale = (
        Alert.objects.filter(tenant_id=tenant.pk, alert_type=alert_type, resource_type=resource_type)
        .exclude(status=AlertStatus.RESOLVED).exclude(resource_id__in=keep)
        .values_list("resource_id", flat=True)
    )
    return sum(
        alerts_resolve_for_resource(tenant=tenant, alert_types=[alert_type], resource_type=resource_type,
                                    resource_id=rid, reason="No longer over the limit.")
        for rid in list(stale)
    )


def check_agent_workload(*, tenant, workloads: Iterable, threshold: int | None = None) -> tuple[int, int]:
    """Alert on agents whose open tickets exceed the tenant's workload threshold (tenant
    settings `workload_threshold`, default ALERTS_WORKLOAD_THRESHOLD). Returns (raised, resolved)."""
    limit = threshold or _tenant_setting(tenant, "workload_threshold", settings.ALERTS_WORKLOAD_THRESHOLD)
    over: set[str] = set()
    raised = 0
    for row in workloads:
        agent_id, count = _get(row, "agent_id"), int(_get(row, "open_tickets", 0))
        if count <= limit:
            continue
        over.add(str(agent_id))
        name = _get(row, "name") or f"agent {agent_id}"
        _, notified = alert_raise(
            tenant=tenant, alert_type=AlertType.HIGH_WORKLOAD, severity=Severity.WARNING, source=AlertSource.CHECK,
            title=f"{name} has {count} open tickets (limit {limit})", resource_type="auth.user", resource_id=agent_id,
            metadata={"open_tickets": count, "threshold": limit},
        )
        raised += 1
    return raised, _resolve_missing(tenant, AlertType.HIGH_WORKLOAD, "auth.user", over)


def check_unassigned_critical(*, tenant, tickets: Iterable, older_than_minutes: int | None = None) -> tuple[int, int]:
    """Alert on critical tickets unassigned for longer than the limit (the selector already
    filters by age); resolve alerts of tickets that got an assignee. Returns (raised, resolved)."""
    minutes = older_than_minutes or settings.ALERTS_UNASSIGNED_CRITICAL_MINUTES
    current: set[str] = set()
    for row in tickets:
        tid = str(_get(row, "id"))
        current.add(tid)
        alert_raise(
            tenant=tenant, alert_type=AlertType.UNASSIGNED_CRITICAL, severity=Severity.CRITICAL, source=AlertSource.CHECK,
            title=f"{_get(row, 'title') or 'Ticket ' + tid} is critical and unassigned for over {minutes} min",
            resource_type="tickets.ticket", resource_id=tid, metadata={"url": _get(row, "url") or ""},
        )
    return len(current), _resolve_missing(tenant, AlertType.UNASSIGNED_CRITICAL, "tickets.ticket", current)


def _tenants_with_tickets():
    from apps.core.choices import OrgKind
    from apps.tenants.choices import OrgStatus
    from apps.tenants.models import Organization

    return Organization.objects.filter(kind=OrgKind.TENANT, status__in=[OrgStatus.TRIAL, OrgStatus.ACTIVE])


def check_workload_all() -> tuple[int, int]:
    """Beat: agent workload over the tenant's threshold, for every active tenant (reads
    `apps.tickets.selectors.agent_workloads`)."""
    from django.contrib.auth import get_user_model

    from apps.tickets.selectors import agent_workloads

    raised = resolved = 0
    for tenant in _tenants_with_tickets():
        rows = agent_workloads(tenant_id=tenant.pk)
        names = dict(get_user_model().objects.filter(pk__in=[r["user_id"] for r in rows]).values_list("pk", "username"))
        r, s = check_agent_workload(tenant=tenant, workloads=[
            {"agent_id": r["user_id"], "open_tickets": r["open_count"], "name": names.get(r["user_id"])} for r in rows
        ])
        raised, resolved = raised + r, resolved + s
    return raised, resolved


def check_unassigned_critical_all() -> tuple[int, int]:
    """Beat: critical tickets unassigned for longer than the tenant's limit (tenant setting
    `unassigned_critical_minutes`, default ALERTS_UNASSIGNED_CRITICAL_MINUTES)."""
    from apps.tickets.selectors import unassigned_critical

    raised = resolved = 0
    for tenant in _tenants_with_tickets():
        minutes = _tenant_setting(tenant, "unassigned_critical_minutes", settings.ALERTS_UNASSIGNED_CRITICAL_MINUTES)
        rows = [{"id": t.pk, "title": f"{t.number} {t.subject}", "url": t.get_admin_url()}
                for t in unassigned_critical(tenant_id=tenant.pk, older_than=timedelta(minutes=minutes))[:500]]
        r, s = check_unassigned_critical(tenant=tenant, tickets=rows, older_than_minutes=minutes)
        raised, resolved = raised + r, resolved + s
    return raised, resolved


HIGH_PRIORITY_QUEUE_THRESHOLD = 5  # default; tenant setting `high_priority_queue_threshold`


def check_high_priority_queue_all() -> tuple[int, int]:
    """Beat (seed 002 "high-priority items in queue"): a tenant whose unassigned open high, urgent
    or critical tickets reach its threshold gets one alert (counted while it stays over),
    resolved once the queue is below it. Returns (raised, resolved)."""
    from apps.tickets.selectors import high_priority_waiting

    raised = resolved = 0
    for tenant in _tenants_with_tickets():
        threshold = _tenant_setting(tenant, "high_priority_queue_threshold", HIGH_PRIORITY_QUEUE_THRESHOLD)
        waiting = high_priority_waiting(tenant_id=tenant.pk)
        keep: set[str] = set()
        if waiting >= threshold:
            keep.add(str(tenant.pk))
            alert_raise(tenant=tenant, alert_type=AlertType.HIGH_PRIORITY_QUEUE, severity=Severity.WARNING, source=AlertSource.CHECK,
                        title=f"{waiting} high-priority tickets waiting in the queue (threshold {threshold})",
                        resource_type="tenants.organization", resource_id=str(tenant.pk),
                        metadata={"url": "/admin/tickets/ticket/?assignee__isnull=True", "waiting": waiting, "threshold": threshold})
            raised += 1
        resolved += _resolve_missing(tenant, AlertType.HIGH_PRIORITY_QUEUE, "tenants.organization", keep)
    return raised, resolved


# -- rules -----------------------------------------------------------------------------------
def _config(rule: AlertRule, default_type=AlertType.CUSTOM) -> dict:
    cfg = rule.alert_config or {}
    return {
        "alert_type": cfg.get("alert_type", default_type),
        "severity": cfg.get("severity", Severity.WARNING),
        "title": cfg.get("title") or rule.name,
        "message": cfg.get("message", ""),
        "labels": {"rule": rule.name, **cfg.get("labels", {})},
    }


def rules_for_event(event) -> int:
    """Raise alerts for the tenant's enabled `event` rules that match this event."""
    if not event.tenant_id:
        return 0
    raised = 0
    rules = AlertRule.objects.filter(tenant_id=event.tenant_id, rule_type=RuleType.EVENT, enabled=True)
    for rule in rules:
        cond = rule.conditions
        if not fnmatch.fnmatchcase(event.name, cond["event"]):
            continue
        payload = event.payload or {}
        if any(str(payload.get(k)) != str(v) for k, v in (cond.get("match") or {}).items()):
            continue
        cfg = _config(rule)
        title = cfg["title"] + (f": {payload['title']}" if payload.get("title") else "")
        alert_raise(
            tenant=event.tenant_id, alert_type=cfg["alert_type"], severity=cfg["severity"], title=title,
            message=cfg["message"], labels=cfg["labels"], resource_type=str(payload.get("object_type", "")),
            resource_id=str(payload.get("id", "")), source=AlertSource.RULE, rule=rule,
            metadata={"event": event.name, "event_id": str(event.pk)},
            fingerprint=None if not payload.get("object_type") else f"rule{rule.pk}:{payload.get('object_type')}:{payload.get('id')}"[:64],
        )
        raised += 1
    return raised


_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


def evaluate_threshold_rule(rule: AlertRule, *, now=None) -> bool:
    """`alert_count` over a window compared with a value; raises (or counts) the rule's alert
    while the condition holds and resolves it when it stops holding. Returns the condition."""
    now = now or timezone.now()
    cond = rule.conditions
    qs = Alert.objects.filter(tenant_id=rule.tenant_id, last_seen__gte=now - timedelta(minutes=cond.get("window_minutes", 60)))
    qs = qs.exclude(rule=rule)
    if cond.get("alert_type"):
        qs = qs.filter(alert_type=cond["alert_type"])
    if cond.get("severity"):
        qs = qs.filter(severity=cond["severity"])
    matchers = cond.get("label_matchers") or []
    if matchers:
        exact = {m["name"]: m["value"] for m in matchers if m.get("op", "=") == "="}
        qs = with_labels(qs, exact)
        count = sum(1 for labels in qs.values_list("labels", flat=True).iterator() if matches_all(matchers, labels))
    else:
        count = qs.count()
    holds = _OPS[cond["operator"]](count, cond["value"])
    fingerprint = f"rule{rule.pk}:threshold"
    if holds:
        cfg = _config(rule)
        alert_raise(tenant=rule.tenant_id, alert_type=cfg["alert_type"], severity=cfg["severity"],
                    title=f"{cfg['title']} ({count} {cond['operator']} {cond['value']})", message=cfg["message"],
                    labels=cfg["labels"], fingerprint=fingerprint, source=AlertSource.RULE, rule=rule, now=now,
                    metadata={"value": count})
    else:
        with transaction.atomic():
            for alert in Alert.of_fingerprint(rule.tenant_id, fingerprint).select_for_update().exclude(status=AlertStatus.RESOLVED):
                from .services import _mark_resolved

                _mark_resolved(alert, actor=None, reason=f"Back within limits ({count}).", now=now)
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    return holds


def evaluate_schedule_rule(rule: AlertRule, *, now=None) -> bool:
    """Raise the rule's alert when its cron time has come since the last evaluation."""
    now = now or timezone.now()
    tz = ZoneInfo(rule.conditions.get("timezone") or "UTC")
    base = (rule.last_evaluated_at or rule.created_at).astimezone(tz)
    due = croniter(rule.conditions["cron"], base).get_next(type(base))
    if due > now:
        return False
    cfg = _config(rule)
    alert_raise(tenant=rule.tenant_id, alert_type=cfg["alert_type"], severity=cfg["severity"], title=cfg["title"],
                message=cfg["message"], labels=cfg["labels"], fingerprint=f"rule{rule.pk}:schedule",
                source=AlertSource.RULE, rule=rule, now=now, metadata={"scheduled_for": due.isoformat()})
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    return True


def rules_evaluate(*, now=None) -> int:
    """Beat: evaluate every enabled threshold and schedule rule once."""
    now = now or timezone.now()
    done = 0
    for rule in AlertRule.objects.filter(enabled=True, rule_type__in=[RuleType.THRESHOLD, RuleType.SCHEDULE]):
        if rule.rule_type == RuleType.THRESHOLD:
            evaluate_threshold_rule(rule, now=now)
        else:
            evaluate_schedule_rule(rule, now=now)
        done += 1
    return done


def sla_rule_for(tenant_id: int, kind: str, priority: str | None) -> AlertRule | None:
    """The tenant's first enabled `sla` rule for this kind (at_risk/breached) and priority."""
    for rule in AlertRule.objects.filter(tenant_id=tenant_id, rule_type=RuleType.SLA, enabled=True).order_by("name"):
        if kind not in rule.conditions.get("on", []):
            continue
        prios = rule.conditions.get("priorities")
        if prios and priority not in prios:
            continue
        return rule
    return None
