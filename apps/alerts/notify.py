"""Who hears about an alert: the `notify` block of docs/events.md, silences and inhibition.

The publisher decides *who* (assignee, subscribers of the alert type, rule actions, or the
tenant's responder roles for a broadcast); the notifications app decides *how*. Silenced and
inhibited alerts carry no notify block at all.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from apps.core.events import publish

from .choices import SEVERITY_PRIORITY, SEVERITY_RANK, AlertStatus, Severity
from .matching import matches_all
from .models import Alert, AlertSubscription, InhibitRule, Silence

BROADCAST_ROLES = ["owner", "admin", "operator", "support_agent"]


def with_labels(qs, exact: dict):
    """`qs` narrowed to alerts whose labels include every `exact` pair: jsonb containment on
    PostgreSQL (its GIN-free `@>`), one JSON key comparison per pair elsewhere (SQLite)."""
    if not exact:
        return qs
    if connection.features.supports_json_field_contains:
        return qs.filter(labels__contains=exact)
    names = {f"_label_{i}": (KeyTransform(k, "labels"), v) for i, (k, v) in enumerate(exact.items())}
    return qs.alias(**{n: t for n, (t, _) in names.items()}).filter(**{n: v for n, (_, v) in names.items()})


def admin_url(alert_id) -> str:
    return f"/admin/alerts/alert/{alert_id}/change/"


def active_silences(tenant_id: int, at=None) -> list[Silence]:
    at = at or timezone.now()
    return list(Silence.objects.filter(tenant_id=tenant_id, starts_at__lte=at, ends_at__gt=at))


def silenced_by(labels: dict, silences: list[Silence]) -> Silence | None:
    for silence in silences:
        if matches_all(silence.matchers, labels):
            return silence
    return None


def inhibited_by(tenant_id: int, labels: dict, *, exclude_id=None, rules: list[InhibitRule] | None = None) -> InhibitRule | None:
    """The inhibition rule muting an alert with these labels, if a matching source fires."""
    if rules is None:
        rules = list(InhibitRule.objects.filter(tenant_id=tenant_id, enabled=True))
    for rule in rules:
        if not matches_all(rule.target_matchers, labels):
            continue
        exact = {m["name"]: m["value"] for m in rule.source_matchers if m.get("op", "=") == "="}
        for name in rule.equal:
            exact.setdefault(name, str(labels.get(name, "")))
        sources = with_labels(Alert.objects.filter(tenant_id=tenant_id, status=AlertStatus.FIRING), exact)
        if exclude_id is not None:
            sources = sources.exclude(pk=exclude_id)
        for src_labels in sources.values_list("labels", flat=True)[:500]:
            if matches_all(rule.source_matchers, src_labels) and all(
                str(src_labels.get(n, "")) == str(labels.get(n, "")) for n in rule.equal
            ):
                return rule
    return None


def maintenance_for(tenant_id: int, labels: dict, *, resource_type: str = "", resource_id: str = "", at=None, windows=None):
    """The active maintenance window (apps.maintenance) covering an alert — tenant-wide, by its
    labels, or by its related object (resource_type "app.model" + id) — or None."""
    from apps.maintenance.selectors import active_windows

    found = active_windows(tenant_id=tenant_id, labels=labels or {}, at=at, windows=windows)
    if found:
        return found[0]
    if resource_type and str(resource_id).isdigit():
        from django.contrib.contenttypes.models import ContentType

        app_label, _, model = resource_type.partition(".")
        ct = ContentType.objects.filter(app_label=app_label, model=model).first()
        if ct is not None:
            for window in active_windows(tenant_id=tenant_id, at=at, windows=windows):
                if (ct.pk, int(resource_id)) in window._scoped_objects():
                    return window
    return None


def subscribers(tenant_id: int, alert_type: str, severity: str, *, flag: str | None = None) -> tuple[list[int], list[str]]:
    """User ids subscribed to this type at this severity (and the union of their channels)."""
    allowed = [s for s, rank in SEVERITY_RANK.items() if rank <= SEVERITY_RANK[Severity(severity)]]
    qs = AlertSubscription.objects.filter(tenant_id=tenant_id, alert_type=alert_type, enabled=True, min_severity__in=allowed)
    if flag:
        qs = qs.filter(**{flag: True})
    return subscriber_union(qs.values_list("user_id", "channels"))


def subscriber_union(rows) -> tuple[list[int], list[str]]:
    """(user ids, union of their channels) of `(user_id, channels)` subscription rows."""
    rows = list(rows)
    return sorted({uid for uid, _ in rows}), sorted({c for _, chans in rows for c in chans or []})


def first_matching_policy(policies, alert_type: str, severity: str):
    """The first of `policies` (enabled, in name order) for an alert of this type and severity."""
    rank = SEVERITY_RANK[Severity(severity)]
    for pol in policies:
        if pol.alert_types and alert_type not in pol.alert_types:
            continue
        if rank >= SEVERITY_RANK[Severity(pol.min_severity)]:
            return pol
    return None


def recipients(alert: Alert, *, flag: str | None = None) -> dict:
    """user_ids/roles/channels for an alert: a rule's notify action wins; else the assignee
    plus subscribers; a broadcast alert without subscribers reaches the responder roles."""
    for action in (alert.rule.actions if alert.rule_id and alert.rule else []) or []:
        if action.get("type") == "notify":
            block: dict = {"user_ids": list(action.get("user_ids", []))}
            roles = list(action.get("roles", []))
            if action.get("broadcast"):
                roles = sorted(set(roles) | set(BROADCAST_ROLES))
            if roles:
                block["roles"] = roles
            if action.get("channels"):
                block["channels"] = action["channels"]
            if alert.assigned_to_id and alert.assigned_to_id not in block["user_ids"]:
                block["user_ids"].append(alert.assigned_to_id)
            return block
    user_ids, channels = subscribers(alert.tenant_id, alert.alert_type, alert.severity, flag=flag)
    block = {"user_ids": user_ids}
    if alert.assigned_to_id:
        block["user_ids"] = sorted(set(user_ids) | {alert.assigned_to_id})
    elif not user_ids and flag is None:
        block["roles"] = list(BROADCAST_ROLES)
    if channels:
        block["channels"] = channels
    return block


def alert_payload(alert: Alert, **extra) -> dict:
    return {
        "id": alert.pk,
        "object_type": "alerts.alert",
        "title": alert.title,
        "url": admin_url(alert.pk),
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "status": alert.status,
        "fingerprint": alert.fingerprint,
        "occurrences": alert.occurrences,
        "resource_type": alert.resource_type,
        "resource_id": alert.resource_id,
        "assigned_to_id": alert.assigned_to_id,
        "silenced": alert.silenced,
        **extra,
    }


def publish_alert_event(name: str, alert: Alert, *, notify_type: str, title: str, block: dict | None, actor=None,
                        priority: str | None = None, **extra) -> None:
    """Publish `alert.*` with a notify block (None: nobody is notified, e.g. silenced)."""
    payload = alert_payload(alert, **extra)
    if block is not None and (block.get("user_ids") or block.get("roles")):
        if actor is not None and block.get("user_ids"):
            block = {**block, "user_ids": [u for u in block["user_ids"] if u != actor.pk]}
        if block.get("user_ids") or block.get("roles"):
            payload["notify"] = {
                "type": notify_type,
                "priority": priority or SEVERITY_PRIORITY[Severity(alert.severity)],
                "title": title,
                "message": alert.message[:1000],
                "action_url": admin_url(alert.pk),
                "action_label": "Open alert",
                **block,
            }
    publish(name, tenant=alert.tenant_id, payload=payload, actor=actor)


def open_alerts_q() -> Q:
    return ~Q(status=AlertStatus.RESOLVED)
