"""Every write of the alerts app: raising (deduplicated by fingerprint), acknowledging,
resolving, per-person read/dismiss, escalation steps, auto-resolve, purge, summaries, and the
configuration rows (rules, subscriptions, silences, inhibition rules, escalation policies,
ingestion tokens). Ingestion lives in `ingest.py`, built-in checks and rules in `checks.py`."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.core.audit import config_change, config_deleted
from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, OrgKind
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant
from apps.core.tenancy import acting

from . import ingest_config
from .choices import SEVERITY_RANK, AlertSource, AlertStatus, AlertType, Severity
from .ingest_config import hash_token
from .matching import labels_fingerprint, resource_fingerprint
from .models import (
    Alert,
    AlertRecipientState,
    AlertRule,
    AlertSubscription,
    EscalationPolicy,
    IngestToken,
    InhibitRule,
    Silence,
)
from .notify import (
    BROADCAST_ROLES,
    active_silences,
    alert_payload,
    first_matching_policy,
    inhibited_by,
    maintenance_for,
    publish_alert_event,
    recipients,
    silenced_by,
    subscribers,
)

_TENANT_ID = object()


def _tenant_id(tenant) -> int:
    return tenant if isinstance(tenant, int) else tenant.pk


def _require(actor, action: str, obj) -> None:
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(f"Your role does not allow you to {action} this {obj._meta.verbose_name}.")


# -- raising ---------------------------------------------------------------------------------
def _matching_policy(tenant_id: int, alert_type: str, severity: str) -> EscalationPolicy | None:
    return first_matching_policy(EscalationPolicy.objects.filter(tenant_id=tenant_id, enabled=True).order_by("name"), alert_type, severity)


def _arm_escalation(alert: Alert, now) -> None:
    pol = _matching_policy(alert.tenant_id, alert.alert_type, alert.severity)
    alert.escalation_policy = pol
    alert.escalation_step = 0
    alert.escalation_round = 0
    alert.next_escalation_at = now + timedelta(minutes=pol.steps[0]["wait_minutes"]) if pol else None


def _mute_reason(alert: Alert, now) -> str:
    silence = silenced_by(alert.labels, active_silences(alert.tenant_id, now))
    if silence is not None:
        return f"silence {silence.pk}"
    window = maintenance_for(alert.tenant_id, alert.labels, resource_type=alert.resource_type, resource_id=alert.resource_id, at=now)
    if window is not None:
        return f"maintenance window {window.pk} ({window.name})"
    rule = inhibited_by(alert.tenant_id, alert.labels, exclude_id=alert.pk)
    return f"inhibited by {rule.name}" if rule is not None else ""


BROADCAST_REFUSED = "Your role may not send broadcast alerts (alerts.broadcast: tenant admins); assign the alert to someone."


def alert_create(*, actor, alert_type: str, title: str, severity: str = Severity.WARNING, message: str = "", assigned_to=None,
                 labels: dict | None = None, expires_at=None) -> Alert:
    """An alert raised by a person or an integration (seed 002 `create_alert` / `broadcast_alert`):
    assigned to a staff member of the acting tenant, or — with the policy's `broadcast` action —
    to all its staff. Deduplicated like any alert (same type, title, recipient and labels: another
    occurrence)."""
    probe = Alert(alert_type=alert_type, title=title)
    assign_tenant(probe, actor=actor)
    if actor is not None and not policy.allows(actor, "add", Alert):
        raise PermissionDenied("Your role does not allow creating alerts.")
    if alert_type not in AlertType.values:
        raise ValidationError({"alert_type": f"Unknown alert type {alert_type!r}; use one of {', '.join(AlertType.values)}."})
    if severity not in Severity.values:
        raise ValidationError({"severity": f"Unknown severity {severity!r}; use info, warning or critical."})
    if assigned_to is not None and not _is_tenant_staff(assigned_to, probe.tenant_id):
        raise ValidationError({"assigned_to": "That person is not a staff member of this tenant."})
    if not (title or "").strip():
        raise ValidationError({"title": "Give the alert a title."})
    # the same title to the same people again is another occurrence; another title is another alert
    labels = {**(labels or {}), "title": title.strip(), "assignee": str(assigned_to.pk) if assigned_to is not None else "broadcast"}
    alert, _ = alert_raise(tenant=probe.tenant_id, alert_type=alert_type, title=title.strip(), severity=severity, message=message,
                           assigned_to=assigned_to, labels=labels, expires_at=expires_at, source=AlertSource.MANUAL, actor=actor)
    return alert


def _is_tenant_staff(user, tenant_id) -> bool:
    from apps.tenants.models import Membership

    return Membership.objects.filter(user=user, organization_id=tenant_id, is_active=True, role__in=STAFF_ROLES).exists()


def alert_raise(
    *,
    tenant,
    alert_type: str,
    title: str,
    severity: str = Severity.WARNING,
    message: str = "",
    resource_type: str = "",
    resource_id="",
    related=None,
    labels: dict | None = None,
    fingerprint: str | None = None,
    assigned_to=None,
    metadata: dict | None = None,
    expires_at=None,
    ends_at=None,
    source: str = AlertSource.EVENT,
    rule: AlertRule | None = None,
    actor=None,
    now=None,
) -> tuple[Alert, bool]:
    """Raise an alert or count another occurrence of the open one with the same fingerprint.

    Returns (alert, notified). A firing/acknowledged alert with the same fingerprint gets
    occurrences+1 and last_seen (severity may rise), and nobody is notified again. Resolved
    alerts stay history: firing again is a new row, as in ingestion (docs/alerts.md). A new
    alert notifies its recipients unless a silence or an inhibition rule mutes it, and arms the
    first matching escalation policy.
    """
    call = dict(locals())  # every argument, for the retry after a unique-key race
    now = now or timezone.now()
    tenant_id = _tenant_id(tenant)
    resource_id = str(resource_id or "")
    if related is not None and not resource_type:
        resource_type = f"{related._meta.app_label}.{related._meta.model_name}"
        resource_id = str(related.pk)
    full_labels = {"alertname": alert_type, "severity": str(severity), **({"resource_type": resource_type, "resource_id": resource_id} if resource_type else {}), **(labels or {})}
    full_labels = {str(k): str(v) for k, v in full_labels.items()}
    if fingerprint is None:
        if resource_type:
            fingerprint = resource_fingerprint(tenant_id, alert_type, resource_type, resource_id)
        else:
            fingerprint = labels_fingerprint(tenant_id, {k: v for k, v in full_labels.items() if k != "severity"})
    if actor is not None and assigned_to is None and not policy.allows(actor, "broadcast", Alert):
        raise PermissionDenied(BROADCAST_REFUSED)
    with transaction.atomic():
        # the open row (the partial unique index); resolved rows are history
        alert = Alert.of_fingerprint(tenant_id, fingerprint).select_for_update().exclude(status=AlertStatus.RESOLVED).first()
        if alert is not None:
            alert.occurrences += 1
            alert.last_seen = now
            if SEVERITY_RANK[Severity(severity)] > SEVERITY_RANK[Severity(alert.severity)]:
                alert.severity = severity
                alert.labels = {**alert.labels, "severity": str(severity)}
            alert.title, alert.message = title[:300], message or alert.message
            if ends_at is not None or (rule and rule.auto_resolve_minutes):
                alert.ends_at = ends_at or now + timedelta(minutes=rule.auto_resolve_minutes)
            alert.save(update_fields=["occurrences", "last_seen", "severity", "labels", "title", "message", "ends_at", "updated_at"])
            return alert, False
        ct = ContentType.objects.get_for_model(related) if related is not None else None
        alert = Alert(
            tenant_id=tenant_id, alert_type=alert_type, severity=severity, title=title[:300], message=message,
            source=source, content_type=ct, object_id=str(related.pk) if related is not None else "",
            resource_type=resource_type, resource_id=resource_id, labels=full_labels, fingerprint=fingerprint,
            first_seen=now, last_seen=now, starts_at=now, assigned_to=assigned_to, rule=rule,
            metadata=metadata or {}, expires_at=expires_at,
        )
        if ends_at is None and rule is not None and rule.auto_resolve_minutes:
            ends_at = now + timedelta(minutes=rule.auto_resolve_minutes)
        alert.ends_at = ends_at
        mute = _mute_reason(alert, now)
        alert.silenced = bool(mute)
        if mute:
            alert.metadata = {**alert.metadata, "muted": mute}
            alert.next_escalation_at = None
        else:
            _arm_escalation(alert, now)
        alert.full_clean(validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                alert.save()
        except IntegrityError:
            # Another writer opened the same fingerprint a moment ago: count an occurrence there,
            # with every argument of this call.
            return alert_raise(**{**call, "fingerprint": fingerprint, "now": now})
        publish_alert_event(
            "alert.fired", alert, notify_type=f"alert_{alert.alert_type}", title=alert.title,
            block=None if mute else recipients(alert), actor=actor,
        )
        return alert, not mute


# -- state changes ---------------------------------------------------------------------------
def alert_acknowledge(alert: Alert, *, actor, now=None) -> Alert:
    """Acknowledge a firing alert: stops its escalation; subscribers who asked are told."""
    _require(actor, "acknowledge", alert)
    now = now or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == AlertStatus.RESOLVED:
            raise ValidationError("This alert is already resolved.")
        if alert.status == AlertStatus.ACKNOWLEDGED:
            return alert
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at, alert.acknowledged_by = now, actor
        alert.next_escalation_at = None
        alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "next_escalation_at", "updated_at"])
        user_ids, channels = subscribers(alert.tenant_id, alert.alert_type, alert.severity, flag="notify_on_acknowledge")
        who = getattr(actor, "username", "the system")
        publish_alert_event("alert.acknowledged", alert, notify_type="alert_acknowledged", title=f"Acknowledged by {who}: {alert.title}",
                            block=None if alert.silenced else {"user_ids": user_ids, **({"channels": channels} if channels else {})},
                            actor=actor, priority="low")
    return alert


def alert_resolve(alert: Alert, *, actor, reason: str = "", now=None) -> Alert:
    """Resolve an open alert (kept as history); stops escalation; the assignee and subscribers
    who asked for resolutions are told."""
    _require(actor, "resolve", alert)
    now = now or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status == AlertStatus.RESOLVED:
            return alert
        _mark_resolved(alert, actor=actor, reason=reason, now=now)
    return alert


def _mark_resolved(alert: Alert, *, actor, reason: str, now) -> None:
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at, alert.resolved_by = now, actor
    alert.next_escalation_at = None
    if reason:
        alert.metadata = {**alert.metadata, "resolution": reason[:500]}
    alert.save(update_fields=["status", "resolved_at", "resolved_by", "next_escalation_at", "metadata", "updated_at"])
    user_ids, channels = subscribers(alert.tenant_id, alert.alert_type, alert.severity, flag="notify_on_resolve")
    if alert.assigned_to_id:
        user_ids = sorted(set(user_ids) | {alert.assigned_to_id})
    publish_alert_event("alert.resolved", alert, notify_type="alert_resolved", title=f"Resolved: {alert.title}",
                        block=None if alert.silenced else {"user_ids": user_ids, **({"channels": channels} if channels else {})},
                        actor=actor, priority="low", reason=reason)


def alerts_resolve_for_resource(*, tenant, alert_types, resource_type: str, resource_id, reason: str = "", now=None) -> int:
    """Resolve the open alerts of these types about one object (event handlers: endpoint.up…)."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        rows = Alert.objects.select_for_update().filter(
            tenant_id=_tenant_id(tenant), alert_type__in=list(alert_types), resource_type=resource_type, resource_id=str(resource_id)
        ).exclude(status=AlertStatus.RESOLVED)
        for alert in rows:
            _mark_resolved(alert, actor=None, reason=reason, now=now)
            count += 1
    return count


def _state(alert: Alert, actor) -> AlertRecipientState:
    state, _ = AlertRecipientState.objects.get_or_create(alert=alert, user=actor)
    return state


def alert_mark_read(alert: Alert, *, actor, now=None) -> AlertRecipientState:
    """Mark an alert read for this person only (a broadcast stays unread for the others)."""
    _require(actor, "read", alert)
    with transaction.atomic():
        state = _state(alert, actor)
        if state.read_at is None:
            state.read_at = now or timezone.now()
            state.save(update_fields=["read_at"])
    return state


def alert_dismiss(alert: Alert, *, actor, now=None) -> AlertRecipientState:
    """Hide an alert from this person's list (and count it read)."""
    _require(actor, "dismiss", alert)
    now = now or timezone.now()
    with transaction.atomic():
        state = _state(alert, actor)
        state.dismissed_at = state.dismissed_at or now
        state.read_at = state.read_at or now
        state.save(update_fields=["read_at", "dismissed_at"])
    return state


def alert_update(alert: Alert, *, actor, **fields) -> Alert:
    """Admin edit of an alert (assignee, severity, title, message, expiry)."""
    _require(actor, "change", alert)
    allowed = {"assigned_to", "severity", "title", "message", "expires_at", "metadata"}
    bad = set(fields) - allowed
    if bad:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(bad))}.")
    if "assigned_to" in fields and fields["assigned_to"] is None and actor is not None and not policy.allows(actor, "broadcast", Alert):
        raise PermissionDenied(BROADCAST_REFUSED)
    for key, value in fields.items():
        setattr(alert, key, value)
    with transaction.atomic():
        alert.full_clean(validate_constraints=False)
        alert.save()
    return alert


def alert_delete(alert: Alert, *, actor) -> None:
    _require(actor, "delete", alert)
    alert.delete()


# -- escalation ------------------------------------------------------------------------------
def alert_escalate_step(*, alert_id: int, now=None, force: bool = False, reason: str = "") -> Alert | None:
    """Run the due escalation step of one alert (claimed with SKIP LOCKED): notify the step's
    users/roles and arm the next step, or repeat the policy, or stop. While a maintenance window
    covers the alert the step waits (re-checked every minute). `force` runs the current step now
    even if acknowledged (a failed runbook pages the on-call person)."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Alert.objects.select_for_update(skip_locked=True, of=("self",)).select_related("escalation_policy")
        qs = qs.filter(pk=alert_id).exclude(status=AlertStatus.RESOLVED) if force else qs.filter(
            pk=alert_id, status=AlertStatus.FIRING, next_escalation_at__lte=now)
        alert = qs.first()
        if alert is None or alert.escalation_policy is None or not alert.escalation_policy.enabled:
            if alert is not None:
                Alert.objects.filter(pk=alert.pk).update(next_escalation_at=None)
            return None
        if not force and maintenance_for(alert.tenant_id, alert.labels, resource_type=alert.resource_type,
                                         resource_id=alert.resource_id, at=now) is not None:
            Alert.objects.filter(pk=alert.pk).update(next_escalation_at=now + timedelta(minutes=1))
            return None
        steps = alert.escalation_policy.steps
        index = min(alert.escalation_step, len(steps) - 1)
        step = steps[index]
        block, gaps = _step_block(alert, step, now)
        if gaps is not None and not (alert.silenced and not force):
            publish("alert.nobody_on_call", tenant=alert.tenant_id, payload=alert_payload(
                alert, title=f"Nobody on call in {', '.join(g['name'] for g in gaps['schedules'])} (step {index + 1}/{len(steps)}): "
                             f"{FALLBACK_TEXT[gaps['fallback']]}",
                step=index + 1, round=alert.escalation_round + 1, policy=alert.escalation_policy.name, **gaps))
        publish_alert_event(
            "alert.escalated", alert, notify_type="alert_escalated", priority="urgent",
            title=f"Unacknowledged (step {index + 1}/{len(steps)}): {alert.title}",
            block=None if alert.silenced and not force else block, step=index + 1, round=alert.escalation_round + 1,
            policy=alert.escalation_policy.name, **({"reason": reason} if reason else {}),
        )
        repeats = int((alert.metadata or {}).get("step_repeats", 0))
        if repeats < step.get("repeat", 0):
            # the same step again after its wait (a step can repeat before the chain moves on)
            alert.metadata = {**(alert.metadata or {}), "step_repeats": repeats + 1}
            alert.escalation_step = index
            alert.next_escalation_at = now + timedelta(minutes=max(1, step["wait_minutes"]))
            alert.save(update_fields=["escalation_step", "escalation_round", "next_escalation_at", "metadata", "updated_at"])
            return alert
        if repeats:
            alert.metadata = {k: v for k, v in alert.metadata.items() if k != "step_repeats"}
        if index + 1 < len(steps):
            alert.escalation_step = index + 1
            alert.next_escalation_at = now + timedelta(minutes=steps[index + 1]["wait_minutes"])
        elif alert.escalation_round < alert.escalation_policy.repeat:
            alert.escalation_round += 1
            alert.escalation_step = 0
            alert.next_escalation_at = now + timedelta(minutes=max(1, steps[0]["wait_minutes"]))
        else:
            alert.escalation_step = index + 1
            alert.next_escalation_at = None
        alert.save(update_fields=["escalation_step", "escalation_round", "next_escalation_at", "metadata", "updated_at"])
        return alert


FALLBACK_TEXT = {
    "schedule_owners": "paged the schedule owners instead",
    "step_targets": "no stand-in; the step's other recipients were paged",
    "tenant_admins": "paged the tenant's owners and admins instead",
}
FALLBACK_ROLES = [r for r in BROADCAST_ROLES if r in MANAGER_ROLES]  # owner, admin


def _step_block(alert: Alert, step: dict, now) -> tuple[dict, dict | None]:
    """Whom one step pages (a notify block), and the "nobody on call" record when a schedule of
    the step has no one on call now: the schedule's owners stand in for its missing person; a step
    that would then page nobody at all pages the tenant's owners and admins (docs/oncall.md)."""
    block = {"user_ids": list(step.get("user_ids", []))}
    if step.get("roles"):
        block["roles"] = list(step["roles"])
    if step.get("channels"):
        block["channels"] = list(step["channels"])
    if not step.get("oncall_schedule_ids"):
        return block, None
    from apps.oncall.services import escalation_paging

    paging = escalation_paging(tenant_id=alert.tenant_id, schedule_ids=step["oncall_schedule_ids"],
                               next_layer=bool(step.get("oncall_next_layer")), at=now)
    stand_ins = [u for gap in paging.uncovered for u in gap.owner_ids]
    for who in [*paging.user_ids, *stand_ins]:
        if who not in block["user_ids"]:
            block["user_ids"].append(who)
    if not paging.uncovered:
        return block, None
    if stand_ins:
        fallback = "schedule_owners"
    elif paging.user_ids or step.get("user_ids") or step.get("roles"):
        fallback = "step_targets"
    else:
        fallback, block["roles"] = "tenant_admins", list(FALLBACK_ROLES)
    schedules = [{"id": g.schedule_id, "name": g.name, "paged_user_ids": g.owner_ids} for g in paging.uncovered]
    return block, {"schedules": schedules, "fallback": fallback}


def alert_escalate_now(alert: Alert, *, reason: str, now=None) -> Alert | None:
    """Fire the on-call step of the alert's escalation policy now (the first matching policy if
    none was armed; without any policy the responder roles are paged). Used when automated
    remediation failed."""
    now = now or timezone.now()
    alert = Alert.objects.get(pk=alert.pk)
    if alert.status == AlertStatus.RESOLVED:
        return None
    if alert.escalation_policy_id is None:
        pol = _matching_policy(alert.tenant_id, alert.alert_type, alert.severity)
        if pol is not None:
            Alert.objects.filter(pk=alert.pk).update(escalation_policy=pol, escalation_step=0, escalation_round=0)
    if Alert.objects.filter(pk=alert.pk, escalation_policy__isnull=False).exists():
        return alert_escalate_step(alert_id=alert.pk, now=now, force=True, reason=reason)
    publish_alert_event("alert.escalated", alert, notify_type="alert_escalated", priority="urgent",
                        title=f"{reason}: {alert.title}", block={"user_ids": [], "roles": list(BROADCAST_ROLES)}, reason=reason)
    return alert


def escalations_due(*, now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Alert.objects.filter(next_escalation_at__lte=now, status=AlertStatus.FIRING)
        .order_by("next_escalation_at").values_list("pk", flat=True)[:limit]
    )


# -- housekeeping ----------------------------------------------------------------------------
def alerts_auto_resolve(*, now=None, limit: int = 5000) -> int:
    """Resolve open alerts whose `ends_at` has passed (no new occurrence in time). Set-based;
    one `alert.resolved` summary event per tenant notifies subscribers who asked for it."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(ends_at__lte=now).exclude(status=AlertStatus.RESOLVED)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        Alert.objects.filter(pk__in=ids).update(status=AlertStatus.RESOLVED, resolved_at=now, next_escalation_at=None, updated_at=now)
        per_tenant = Alert.objects.filter(pk__in=ids).values("tenant_id", "alert_type").annotate(n=Count("id"))
        grouped: dict[int, dict[str, int]] = {}
        for row in per_tenant:
            grouped.setdefault(row["tenant_id"], {})[row["alert_type"]] = row["n"]
        for tenant_id, types in grouped.items():
            user_ids: set[int] = set()
            for alert_type in types:
                user_ids |= set(subscribers(tenant_id, alert_type, Severity.CRITICAL, flag="notify_on_resolve")[0])
            total = sum(types.values())
            first = min(pk for pk in ids)
            payload = {
                "id": first, "object_type": "alerts.alert", "title": f"{total} alert(s) resolved (no longer reported)",
                "url": "/admin/alerts/alert/?status__exact=resolved", "count": total, "by_type": types,
                "alert_ids": sorted(ids)[:100],
                "ticket_alert_ids": list(Alert.objects.filter(pk__in=ids, tenant_id=tenant_id, ticket__isnull=False).values_list("pk", flat=True)),
            }
            if user_ids:
                payload["notify"] = {"type": "alert_resolved", "priority": "low", "title": payload["title"], "user_ids": sorted(user_ids)}
            publish("alert.resolved", tenant=tenant_id, payload=payload)
    return len(ids)


def alerts_purge(*, now=None, retention_days: int | None = None, chunk: int = 5000) -> int:
    """Delete alerts past `expires_at`, and resolved alerts older than the retention period."""
    now = now or timezone.now()
    days = settings.ALERTS_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = now - timedelta(days=days)
    total = 0
    while True:
        ids = list(
            Alert.objects.filter(Q(expires_at__lte=now) | Q(status=AlertStatus.RESOLVED, resolved_at__lt=cutoff))
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return total
        with transaction.atomic():
            AlertRecipientState.objects.filter(alert_id__in=ids).delete()
            total += Alert.objects.filter(pk__in=ids)._raw_delete(Alert.objects.db)
        if len(ids) < chunk:
            return total


def alerts_daily_summary(*, now=None) -> int:
    """One `alert.daily_summary` event per staff member who had alerts in the last 24 hours
    (their own plus broadcast; tenant admins every alert of the tenant). Returns events sent."""
    from apps.tenants.models import Membership

    now = now or timezone.now()
    since = now - timedelta(hours=24)
    sent = 0
    tenant_ids = Alert.objects.filter(last_seen__gte=since).order_by().values_list("tenant_id", flat=True).distinct()
    for tenant_id in tenant_ids:
        window = Alert.objects.filter(tenant_id=tenant_id).filter(Q(last_seen__gte=since) | Q(resolved_at__gte=since))
        members = Membership.objects.filter(organization_id=tenant_id, organization__kind=OrgKind.TENANT, is_active=True, role__in=STAFF_ROLES)
        for user_id, role in members.values_list("user_id", "role"):
            mine = window if role in MANAGER_ROLES else window.filter(Q(assigned_to_id=user_id) | Q(assigned_to__isnull=True))
            counts = mine.aggregate(
                total=Count("id"),
                open=Count("id", filter=~Q(status=AlertStatus.RESOLVED)),
                critical=Count("id", filter=Q(severity=Severity.CRITICAL)),
                new=Count("id", filter=Q(first_seen__gte=since)),
                resolved=Count("id", filter=Q(status=AlertStatus.RESOLVED, resolved_at__gte=since)),
            )
            if not counts["total"]:
                continue
            title = f"Alerts in the last 24 h: {counts['new']} new, {counts['open']} open, {counts['resolved']} resolved"
            publish("alert.daily_summary", tenant=tenant_id, payload={
                "id": user_id, "object_type": "auth.user", "title": title, "url": "/admin/alerts/alert/",
                "date": now.date().isoformat(), **counts,
                "notify": {"type": "alert_daily_summary", "priority": "low", "title": title, "user_ids": [user_id],
                           "action_url": "/admin/alerts/alert/", "action_label": "Open alerts"},
            })
            sent += 1
    return sent


def silences_remind(*, now=None) -> int:
    """Remind each silence's creator once, shortly before it expires (`silence.expiring`)."""
    now = now or timezone.now()
    soon = now + timedelta(minutes=settings.ALERTS_SILENCE_REMINDER_MINUTES)
    sent = 0
    with transaction.atomic():
        due = Silence.objects.select_for_update(skip_locked=True).filter(
            reminded_at__isnull=True, ends_at__gt=now, ends_at__lte=soon, starts_at__lte=now, created_by__isnull=False
        )
        for silence in due:
            title = f"Silence {silence} expires at {silence.ends_at:%Y-%m-%d %H:%M} UTC"
            publish("silence.expiring", tenant=silence.tenant_id, payload={
                "id": silence.pk, "object_type": "alerts.silence", "title": title,
                "url": f"/admin/alerts/silence/{silence.pk}/change/", "ends_at": silence.ends_at.isoformat(),
                "notify": {"type": "silence_expiring", "priority": "medium", "title": title, "user_ids": [silence.created_by_id],
                           "action_url": f"/admin/alerts/silence/{silence.pk}/change/", "action_label": "Extend silence"},
            })
            silence.reminded_at = now
            silence.save(update_fields=["reminded_at"])
            sent += 1
    return sent


# -- configuration rows ----------------------------------------------------------------------
def _save_config(obj, *, actor, action: str):
    assign_tenant(obj, actor=actor)
    if actor is not None and not policy.allows(actor, action, type(obj)):
        raise PermissionDenied(f"Your role does not allow you to {action} {type(obj)._meta.verbose_name_plural}.")
    with transaction.atomic(), config_change(obj, actor=actor):
        obj.full_clean()
        obj.save()
    return obj


def _update_config(obj, *, actor, fields: dict):
    _require(actor, "change", obj)
    fields.pop("tenant", None)
    with transaction.atomic(), config_change(obj, actor=actor):
        for key, value in fields.items():
            setattr(obj, key, value)
        obj.full_clean()
        obj.save()
    return obj


def _delete_config(obj, *, actor) -> None:
    _require(actor, "delete", obj)
    with transaction.atomic():
        config_deleted(obj, actor=actor)
        obj.delete()


def rule_create(*, actor, **fields) -> AlertRule:
    """Create an alert rule (conditions, alert config and actions validated by JSON schema)."""
    return _save_config(AlertRule(created_by=actor, **fields), actor=actor, action="add")


def rule_update(rule: AlertRule, *, actor, **fields) -> AlertRule:
    return _update_config(rule, actor=actor, fields=fields)


def rule_delete(rule: AlertRule, *, actor) -> None:
    _delete_config(rule, actor=actor)


def subscription_create(*, actor, **fields) -> AlertSubscription:
    """Subscribe a person to an alert type; staff subscribe themselves, tenant admins anyone of
    their tenant."""
    fields.setdefault("user", actor)
    sub = AlertSubscription(**fields)
    assign_tenant(sub, actor=actor)
    _check_subscriber(sub, actor)
    if AlertSubscription.objects.filter(tenant_id=sub.tenant_id, user=sub.user, alert_type=sub.alert_type).exists():
        raise ValidationError({"alert_type": "This person already has a subscription for this alert type; change it instead."})
    return _save_config(sub, actor=actor, action="add")


def _check_subscriber(sub: AlertSubscription, actor) -> None:
    from apps.tenants.models import Membership

    if actor is not None:
        ctx = acting(actor)
        if sub.user_id != actor.pk and not (ctx.is_platform or ctx.role in MANAGER_ROLES):
            raise PermissionDenied("You can only manage your own subscriptions.")
    if not Membership.objects.filter(user_id=sub.user_id, organization_id=sub.tenant_id, is_active=True, role__in=STAFF_ROLES).exists():
        raise ValidationError({"user": "That person is not a staff member of this tenant."})


def subscription_update(sub: AlertSubscription, *, actor, **fields) -> AlertSubscription:
    if "user" in fields:
        sub.user = fields.pop("user")
        _check_subscriber(sub, actor)
    return _update_config(sub, actor=actor, fields=fields)


def subscription_delete(sub: AlertSubscription, *, actor) -> None:
    _delete_config(sub, actor=actor)


SUBSCRIPTION_SET_FIELDS = {"alert_type", "enabled", "channels", "min_severity", "notify_on_acknowledge", "notify_on_resolve"}


def subscriptions_replace(*, actor, subscriptions: list[dict]) -> list[AlertSubscription]:
    """Replace the caller's whole set of subscriptions in the acting tenant at once (seed 002's
    `PUT /api/v1/alerts/subscriptions`): types given are created or updated, the rest deleted.
    All or nothing: one bad entry refuses the set and changes nothing."""
    if not isinstance(subscriptions, list):
        raise ValidationError({"subscriptions": "Send the whole set as a list of subscriptions, e.g. [{\"alert_type\": \"job_failed\"}]."})
    seen: set[str] = set()
    for i, entry in enumerate(subscriptions):
        if not isinstance(entry, dict):
            raise ValidationError({f"subscriptions[{i}]": "Each subscription is an object with an alert_type."})
        unknown = set(entry) - SUBSCRIPTION_SET_FIELDS - {"id", "tenant"}
        if unknown:
            raise ValidationError({f"subscriptions[{i}]": f"Unknown field(s) {', '.join(sorted(unknown))} (a set is the caller's own; "
                                                          f"known: {', '.join(sorted(SUBSCRIPTION_SET_FIELDS))})."})
        if not entry.get("alert_type"):
            raise ValidationError({f"subscriptions[{i}].alert_type": "Give the alert_type of each subscription."})
        if entry["alert_type"] in seen:
            raise ValidationError({f"subscriptions[{i}].alert_type": f"{entry['alert_type']} appears more than once in the set."})
        seen.add(entry["alert_type"])
    result = []
    with transaction.atomic():
        probe = AlertSubscription(user=actor)
        assign_tenant(probe, actor=actor)
        _check_subscriber(probe, actor)
        current = {s.alert_type: s for s in AlertSubscription.objects.select_for_update().filter(tenant_id=probe.tenant_id, user=actor)}
        for i, entry in enumerate(subscriptions):
            fields = {k: v for k, v in entry.items() if k in SUBSCRIPTION_SET_FIELDS}
            try:
                sub = current.pop(fields["alert_type"], None)
                if sub is None:
                    sub = _save_config(AlertSubscription(user=actor, tenant_id=probe.tenant_id, **fields), actor=actor, action="add")
                else:
                    sub = _update_config(sub, actor=actor, fields=fields)
            except ValidationError as exc:
                raise ValidationError({f"subscriptions[{i}]": exc.messages}) from exc
            result.append(sub)
        for sub in current.values():
            _delete_config(sub, actor=actor)
    return result


def silence_create(*, actor, **fields) -> Silence:
    """Create a silence; alerts matching it are stored but notify nobody until it ends."""
    return _save_config(Silence(created_by=actor, **fields), actor=actor, action="add")


def silence_update(silence: Silence, *, actor, **fields) -> Silence:
    if "ends_at" in fields:
        fields["reminded_at"] = None
    return _update_config(silence, actor=actor, fields=fields)


def silence_expire(silence: Silence, *, actor, now=None) -> Silence:
    """End a silence now (Alertmanager's "expire")."""
    now = now or timezone.now()
    return _update_config(silence, actor=actor, fields={"ends_at": now, "starts_at": min(silence.starts_at, now - timedelta(microseconds=1))})


def silence_delete(silence: Silence, *, actor) -> None:
    _delete_config(silence, actor=actor)


def silence_alerts(*, actor, alerts, hours: int = 2, comment: str = "") -> list[Silence]:
    """"Silence like this": one silence per selected alert matching its exact labels."""
    now = timezone.now()
    made = []
    for alert in alerts:
        _require(actor, "view", alert)
        matchers = [{"name": k, "op": "=", "value": str(v)} for k, v in sorted(alert.labels.items()) if k != "severity"]
        made.append(silence_create(actor=actor, tenant=alert.tenant, matchers=matchers or [{"name": "alertname", "op": "=", "value": alert.alert_type}],
                                   starts_at=now, ends_at=now + timedelta(hours=hours), comment=comment or f"Silenced from alert {alert.pk}"))
        if alert.is_open:
            Alert.objects.filter(pk=alert.pk).update(silenced=True, next_escalation_at=None)
    return made


def inhibit_rule_create(*, actor, **fields) -> InhibitRule:
    return _save_config(InhibitRule(**fields), actor=actor, action="add")


def inhibit_rule_update(rule: InhibitRule, *, actor, **fields) -> InhibitRule:
    return _update_config(rule, actor=actor, fields=fields)


def inhibit_rule_delete(rule: InhibitRule, *, actor) -> None:
    _delete_config(rule, actor=actor)


def escalation_policy_create(*, actor, **fields) -> EscalationPolicy:
    """Create an escalation policy (steps validated by JSON schema)."""
    return _save_config(EscalationPolicy(**fields), actor=actor, action="add")


def escalation_policy_update(pol: EscalationPolicy, *, actor, **fields) -> EscalationPolicy:
    return _update_config(pol, actor=actor, fields=fields)


def escalation_policy_delete(pol: EscalationPolicy, *, actor) -> None:
    _delete_config(pol, actor=actor)


TOKEN_PREFIX = "opa_"


def ingest_token_create(*, actor, tenant=None, name: str) -> tuple[IngestToken, str]:
    """Create an ingestion token; returns (row, raw token). The raw token is shown once."""
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = IngestToken(tenant=tenant, name=name, prefix=prefix, token_hash=hash_token(raw), created_by=actor)
    _save_config(token, actor=actor, action="add")
    return token, raw


def ingest_token_revoke(token: IngestToken, *, actor) -> IngestToken:
    return _update_config(token, actor=actor, fields={"revoked_at": token.revoked_at or timezone.now()})


def ingest_token_delete(token: IngestToken, *, actor) -> None:
    _delete_config(token, actor=actor)


def ingest_token_authenticate(raw: str) -> IngestToken | None:
    """The live ingestion token for a raw value, or None — the one check of every ingestion route:
    its hash against the tenant's current snapshot of live token hashes (ingest_config; a
    revocation counts at the next request), compared in constant time; its use recorded at most
    once a minute. The row returned carries its id, tenant and prefix."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    tenant_id = ingest_config.authenticate(raw)
    if tenant_id is None:
        return None
    token_id = ingest_config.token_valid(ingest_config.tenant_config(tenant_id), raw)
    if token_id is None:  # revoked since this process last looked
        ingest_config.forget_token(raw)
        return None
    ingest_config.touch_token(token_id)
    return IngestToken(pk=token_id, tenant_id=tenant_id, prefix=raw.split("_", 2)[1])
