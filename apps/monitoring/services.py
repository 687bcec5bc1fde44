"""Services of the monitoring app: endpoints, the check dispatcher, results and status
transitions (published as `endpoint.down` / `endpoint.degraded` / `endpoint.up`), heartbeats,
and trend rules (`endpoint.trend_breached` / `endpoint.trend_recovered`). Changes to endpoints
and trend rules are audited as `config.*` events (apps/core/audit.py)."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import config_change, config_deleted
from apps.core.events import publish, write_events
from apps.core.policy import policy
from apps.core.services import assign_tenant

from . import selectors
from .checkers import Outcome, run_checks
from .checking import (  # noqa: F401  (the dispatcher's services, re-exported)
    STATE_FIELDS,
    checks_claim_due,
    checks_run_batch,
    event_row,
    results_record,
)
from .checking import spec_for as _spec
from .choices import EndpointKind, EndpointStatus, PingKind, ResultStatus, TrendKind, TrendState
from .models import CheckResult, Endpoint, TrendRule

log = logging.getLogger(__name__)

EDITABLE = (
    "name", "kind", "host", "port", "path", "method", "verify_tls", "expected_status", "expected_response_ms",
    "match_kind", "match_keyword", "match_json_path", "match_json_value", "tls_expiry_warning_days",
    "interval_seconds", "timeout_seconds", "grace_seconds", "failure_threshold", "degraded_threshold",
    "enabled", "labels", "linked_type", "linked_id",
)
NOT_CONFIG = (*STATE_FIELDS, "next_check_at", "last_ping_at", "last_start_at")


# -- endpoints --------------------------------------------------------------------------------
def _check(actor, action, obj):
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(f"Your role may not {action} this endpoint.")


def endpoint_create(*, actor, **fields) -> Endpoint:
    """Register an endpoint; network kinds are first checked at the next dispatcher tick."""
    unknown = set(fields) - set(EDITABLE) - {"tenant", "tenant_id"}
    if unknown:
        raise ValidationError(f"Unknown endpoint fields: {', '.join(sorted(unknown))}.")
    endpoint = Endpoint(**fields)
    assign_tenant(endpoint, actor=actor)
    if actor is not None and not policy.allows(actor, "add", Endpoint):
        raise PermissionDenied("Your role may not register endpoints.")
    if endpoint.kind != EndpointKind.HEARTBEAT and endpoint.enabled:
        endpoint.next_check_at = timezone.now()
    with transaction.atomic(), config_change(endpoint, actor=actor, ignore=NOT_CONFIG):
        endpoint.full_clean()
        endpoint.save()
    return endpoint


def endpoint_update(endpoint: Endpoint, *, actor, **fields) -> Endpoint:
    """Change an endpoint; a changed target or rule is checked again at the next tick.

    Writes only the fields whose value differs from `endpoint` (the row as the caller saw it),
    onto the row re-read under a lock: the checker's state and another edit's fields, written
    since `endpoint` was loaded, are kept. Returns the updated row."""
    _check(actor, "change", endpoint)
    for key in fields:
        if key not in EDITABLE:
            raise ValidationError(f"Field {key!r} cannot be changed.")
    changed = {key: value for key, value in fields.items() if getattr(endpoint, key) != value}
    with transaction.atomic():
        row = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        with config_change(row, actor=actor, ignore=NOT_CONFIG):
            for key, value in changed.items():
                setattr(row, key, value)
            if row.kind == EndpointKind.HEARTBEAT:
                row.next_check_at = row.heartbeat_deadline if row.enabled else None
            elif row.enabled:
                row.next_check_at = timezone.now()
            else:
                row.next_check_at = None
            row.full_clean()
            row.save(update_fields=[*changed, "next_check_at", "updated_at"])
    return row


def endpoint_delete(endpoint: Endpoint, *, actor) -> None:
    """Unregister an endpoint (its results go with it); a firing alert is resolved by an up event."""
    _check(actor, "delete", endpoint)
    with transaction.atomic():
        if endpoint.notified_status in (EndpointStatus.DOWN, EndpointStatus.DEGRADED):
            _publish(endpoint, EndpointStatus.UP, previous=endpoint.notified_status, reason="endpoint removed")
        for rule in endpoint.trend_rules.filter(state=TrendState.BREACHED):
            _trend_publish(rule, TrendState.OK, previous=rule.state, value=rule.last_value, samples=rule.last_samples,
                           reason="endpoint removed")
        config_deleted(endpoint, actor=actor)
        endpoint.delete()


def endpoint_pause(endpoint: Endpoint, *, actor) -> Endpoint:
    _check(actor, "pause", endpoint)
    with transaction.atomic(), config_change(endpoint, actor=actor, ignore=NOT_CONFIG):
        Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, next_check_at=None, updated_at=timezone.now())
        endpoint.refresh_from_db()
    return endpoint


def endpoint_resume(endpoint: Endpoint, *, actor) -> Endpoint:
    _check(actor, "pause", endpoint)
    nxt = endpoint.heartbeat_deadline if endpoint.kind == EndpointKind.HEARTBEAT else timezone.now()
    with transaction.atomic(), config_change(endpoint, actor=actor, ignore=NOT_CONFIG):
        Endpoint.objects.filter(pk=endpoint.pk).update(enabled=True, next_check_at=nxt, updated_at=timezone.now())
        endpoint.refresh_from_db()
    return endpoint


def endpoint_check_now(endpoint: Endpoint, *, actor) -> CheckResult:
    """Check one endpoint right away (admin/API "check now") and record the result."""
    _check(actor, "check", endpoint)
    if endpoint.kind == EndpointKind.HEARTBEAT:
        raise ValidationError("Heartbeat endpoints are pinged by the job they watch; they cannot be checked.")
    outcome = run_checks([_spec(endpoint)], concurrency=1, body_limit=settings.MONITORING_BODY_LIMIT_BYTES,
                         user_agent=settings.MONITORING_USER_AGENT)[0]
    results = results_record(outcomes=[outcome])
    return results[0]


# -- the dispatcher, results and status: checking.py ------------------------------------------
def _publish(e: Endpoint, status: str, *, previous: str, reason: str) -> None:
    write_events([event_row(e, status, previous=previous, reason=reason)])


# -- heartbeats -------------------------------------------------------------------------------
def heartbeat_ping(*, ping_id, kind: str = PingKind.SUCCESS, message: str = "") -> Endpoint | None:
    """A ping from the watched job (`/ping/<uuid>`, `/fail`, `/start`); None if unknown.

    success: up, the deadline moves to now + period + grace (a ping before the deadline is
    simply early: still up). fail: down at once. start: remembered, so the next success
    records the job's duration as latency.
    """
    with transaction.atomic():
        e = Endpoint.objects.select_for_update().filter(ping_id=ping_id, kind=EndpointKind.HEARTBEAT).first()
        if e is None:
            return None
        now = timezone.now()
        if kind == PingKind.START:
            e.last_start_at = now
            e.save(update_fields=["last_start_at", "updated_at"])
            CheckResult.objects.create(endpoint=e, checked_at=now, status=ResultStatus.STARTED, error=message[:500])
            return e
        latency = None
        if kind == PingKind.SUCCESS and e.last_start_at and (e.last_ping_at is None or e.last_start_at > e.last_ping_at):
            latency = round((now - e.last_start_at).total_seconds() * 1000, 2)
        e.last_ping_at = now
        e.next_check_at = now + timedelta(seconds=e.interval_seconds + e.grace_seconds) if e.enabled else None
        e.save(update_fields=["last_ping_at", "next_check_at", "updated_at"])
        outcome = Outcome(endpoint_id=e.pk, ok=kind == PingKind.SUCCESS, latency_ms=latency, checked_at=now,
                          error="" if kind == PingKind.SUCCESS else (message or "the job reported a failure")[:500])
        results_record(outcomes=[outcome], endpoints={e.pk: e})
    return e


# -- trend rules ------------------------------------------------------------------------------
TREND_FIELDS = ("name", "endpoint", "kind", "threshold_ms", "window_minutes", "min_samples", "days", "severity", "labels", "enabled")
TREND_EVENTS = {TrendState.BREACHED: "endpoint.trend_breached", TrendState.OK: "endpoint.trend_recovered"}


def trend_rule_create(*, actor, **fields) -> TrendRule:
    """Add a trend rule to an endpoint (the rule belongs to the endpoint's tenant); it is first
    evaluated at the next `monitoring.evaluate_trends` tick."""
    unknown = set(fields) - set(TREND_FIELDS) - {"tenant", "tenant_id"}
    if unknown:
        raise ValidationError(f"Unknown trend rule fields: {', '.join(sorted(unknown))}.")
    fields.pop("tenant", None)
    fields.pop("tenant_id", None)
    rule = TrendRule(created_by=actor if getattr(actor, "pk", None) else None, **fields)
    if rule.endpoint_id is None:
        raise ValidationError({"endpoint": "Pick the endpoint the rule watches."})
    rule.tenant_id = rule.endpoint.tenant_id
    assign_tenant(rule, actor=actor)
    if actor is not None and not policy.allows(actor, "add", TrendRule):
        raise PermissionDenied("Your role may not add trend rules.")
    with transaction.atomic(), config_change(rule, actor=actor):
        rule.full_clean()
        rule.save()
    return rule


def trend_rule_update(rule: TrendRule, *, actor, **fields) -> TrendRule:
    """Change a trend rule. Disabling a breached rule (or moving it to another endpoint)
    publishes its recovery, so its alert resolves."""
    _check(actor, "change", rule)
    fields.pop("tenant", None)
    fields.pop("tenant_id", None)
    for key in fields:
        if key not in TREND_FIELDS:
            raise ValidationError(f"Field {key!r} cannot be changed.")
    with transaction.atomic():
        # the locked row, not the caller's copy: its state may have moved since it was read
        stored = TrendRule.objects.select_for_update().select_related("endpoint").get(pk=rule.pk)
        rule = copy.copy(stored)  # the copy takes the changes; `stored` keeps the state before them
        for key, value in fields.items():
            setattr(rule, key, value)
        with config_change(rule, actor=actor):
            rule.full_clean()
            rule.save()
        moved = stored.endpoint_id != rule.endpoint_id or stored.kind != rule.kind
        if stored.state == TrendState.BREACHED and (not rule.enabled or moved):
            _trend_publish(stored, TrendState.OK, previous=stored.state, value=stored.last_value, samples=stored.last_samples,
                           reason="rule disabled" if not rule.enabled else "rule changed")
        if moved or not rule.enabled:
            TrendRule.objects.filter(pk=rule.pk).update(state=TrendState.UNKNOWN, state_since=timezone.now())
            rule.refresh_from_db()
    return rule


def trend_rule_delete(rule: TrendRule, *, actor) -> None:
    """Remove a trend rule; a breached one publishes its recovery first."""
    _check(actor, "delete", rule)
    with transaction.atomic():
        if rule.state == TrendState.BREACHED:
            _trend_publish(rule, TrendState.OK, previous=rule.state, value=rule.last_value, samples=rule.last_samples,
                           reason="rule removed")
        config_deleted(rule, actor=actor)
        rule.delete()


def _judge(rule: TrendRule, figures: dict, now) -> tuple[str | None, float | None, int | None, str]:
    """(new state or None for "no verdict", value, samples, reason) for one rule."""
    e = rule.endpoint
    if rule.kind == TrendKind.LATENCY_P95:
        samples, p95 = figures.get(rule.pk, (0, None))
        if samples < rule.min_samples or p95 is None:
            return None, p95, samples, f"{samples} result(s) in the last {rule.window_minutes} min; {rule.min_samples} needed"
        over = p95 > rule.threshold_ms
        reason = (f"p95 latency {p95:.0f} ms {'over' if over else 'within'} the {rule.threshold_ms} ms budget "
                  f"(last {rule.window_minutes} min, {samples} checks)")
        return (TrendState.BREACHED if over else TrendState.OK), p95, samples, reason
    if e.tls_expires_at is None:
        return None, None, None, "no TLS certificate seen yet (the endpoint's HTTPS checks read it)"
    left = (e.tls_expires_at - now).total_seconds() / 86400
    soon = left < rule.days
    when = f"{e.tls_expires_at:%Y-%m-%d %H:%M} UTC"
    reason = (f"TLS certificate {'expired' if left < 0 else f'expires in {left:.1f} days'} ({when}); "
              f"{'within' if soon else 'outside'} the {rule.days}-day warning")
    return (TrendState.BREACHED if soon else TrendState.OK), round(left, 3), None, reason


def trend_rules_evaluate(*, rule_ids: list[int] | None = None, now: datetime | None = None) -> dict:
    """Evaluate enabled trend rules of enabled endpoints (all, or `rule_ids`) and publish the
    transitions: ok → breached (`endpoint.trend_breached`), breached → ok
    (`endpoint.trend_recovered`). The first verdict ok publishes nothing; a breach of an endpoint
    inside a maintenance window is not published (as with down/degraded) until the window ends.
    The latency p95 of every rule comes from one query over the stored check results."""
    now = now or timezone.now()
    rules = TrendRule.objects.filter(enabled=True, endpoint__enabled=True).select_related("endpoint")
    if rule_ids is not None:
        rules = rules.filter(pk__in=rule_ids)
    rules = list(rules)
    figures = selectors.latency_p95_by_rule([r for r in rules if r.kind == TrendKind.LATENCY_P95], now=now)
    counts = {"evaluated": len(rules), "breached": 0, "recovered": 0}
    verdicts = []
    for rule in rules:
        verdict, value, samples, reason = _judge(rule, figures, now)
        rule.last_value, rule.last_samples, rule.last_reason, rule.last_evaluated_at = value, samples, reason[:500], now
        verdicts.append((rule, verdict, value, samples, reason))
    # every rule's figures in one statement per batch; only transitions cost more
    TrendRule.objects.bulk_update(rules, ["last_value", "last_samples", "last_reason", "last_evaluated_at"], batch_size=500)
    for rule, verdict, value, samples, reason in verdicts:
        if verdict is None or verdict == rule.state:
            continue
        if verdict == TrendState.BREACHED and rule.endpoint.in_maintenance:
            continue  # silenced by a maintenance window; published when the window ends if still breached
        with transaction.atomic():
            # claim the transition, so a concurrent "evaluate now" never publishes it twice
            if not TrendRule.objects.filter(pk=rule.pk, state=rule.state).update(state=verdict, state_since=now):
                continue
            if verdict == TrendState.BREACHED or rule.state == TrendState.BREACHED:
                _trend_publish(rule, verdict, previous=rule.state, value=value, samples=samples, reason=reason)
                counts["breached" if verdict == TrendState.BREACHED else "recovered"] += 1
    return counts


def trend_rule_evaluate_now(rule: TrendRule, *, actor) -> TrendRule:
    """Evaluate one rule now (admin/API "evaluate now")."""
    _check(actor, "evaluate", rule)
    if not rule.enabled or not rule.endpoint.enabled:
        raise ValidationError("The rule or its endpoint is disabled; enable both to evaluate it.")
    trend_rules_evaluate(rule_ids=[rule.pk])
    rule.refresh_from_db()
    return rule


def _trend_publish(rule: TrendRule, state: str, *, previous: str, value, samples, reason: str) -> None:
    e = rule.endpoint
    breached = state == TrendState.BREACHED
    if breached:
        title = f"{e.name}: {reason}"
    elif rule.kind == TrendKind.LATENCY_P95:
        title = f"{e.name}: p95 latency back within its budget" + (f" ({reason})" if reason else "")
    else:
        title = f"{e.name}: TLS certificate no longer expiring soon" + (f" ({reason})" if reason else "")
    payload = {
        "id": rule.pk, "object_type": "monitoring.trendrule", "title": title[:300],
        "url": f"/admin/monitoring/trendrule/{rule.pk}/change/",
        "rule": rule.name, "trend": rule.kind, "state": state, "previous_state": previous, "reason": reason,
        "value": value, "samples": samples, "unit": "ms" if rule.kind == TrendKind.LATENCY_P95 else "days",
        "threshold": rule.threshold_ms if rule.kind == TrendKind.LATENCY_P95 else rule.days,
        "window_minutes": rule.window_minutes if rule.kind == TrendKind.LATENCY_P95 else None,
        "severity": rule.severity if breached else "info",
        "endpoint_id": e.pk, "endpoint": e.name, "target": e.url,
        "tls_expires_at": e.tls_expires_at.isoformat() if e.tls_expires_at else None,
        "labels": {**(e.labels or {}), **(rule.labels or {})},
        "linked_type": e.linked_type, "linked_id": e.linked_id,
        "fingerprint": f"monitoring.trendrule:{rule.pk}",
    }
    publish(TREND_EVENTS[state], tenant=rule.tenant_id, payload=payload)
