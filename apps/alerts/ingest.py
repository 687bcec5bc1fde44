"""Ingestion of external alerts (Alertmanager's webhook and `POST /api/v2/alerts` shape):
validated in Python, then upserted set-based — one `INSERT … SELECT FROM jsonb_to_recordset …
ON CONFLICT (tenant_id, fingerprint) WHERE status <> 'resolved' DO UPDATE` per batch for firing
alerts and one CTE statement for resolved ones. Idempotent on retry: a repeated delivery with
the same `startsAt` updates `last_seen` but is not a new occurrence.

Each firing period of an ingested alert is its own row (like Alertmanager's alert instances),
so a label set that fires, resolves and fires again leaves two rows of history; alerts raised
by events reopen instead (services.alert_raise).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.core.events import publish
from apps.maintenance.selectors import candidate_windows

from .choices import SEVERITY_RANK, AlertSource, AlertStatus, AlertType, Severity
from .matching import labels_fingerprint
from .models import Alert, EscalationPolicy, InhibitRule
from .notify import BROADCAST_ROLES, active_silences, inhibited_by, maintenance_for, silenced_by, subscribers

ZERO_TIME_PREFIX = "0001-01-01"
_FRACTION = re.compile(r"(\.\d{6})\d+")
SEVERITY_ALIASES = {
    "critical": Severity.CRITICAL, "page": Severity.CRITICAL, "error": Severity.CRITICAL, "high": Severity.CRITICAL,
    "fatal": Severity.CRITICAL, "warning": Severity.WARNING, "warn": Severity.WARNING, "medium": Severity.WARNING,
    "info": Severity.INFO, "informational": Severity.INFO, "low": Severity.INFO, "none": Severity.INFO,
}


class IngestRateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"Ingestion limit reached; retry in {retry_after} s.")


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    updated: int = 0
    resolved: int = 0
    silenced: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_rate_check(*, tenant_id: int, count: int, now=None) -> None:
    """Fixed one-minute window per tenant in the cache; raise IngestRateLimited when full."""
    limit = settings.ALERTS_INGEST_RATE_PER_MINUTE
    now = now or timezone.now()
    window = int(now.timestamp()) // 60
    key = f"alerts:ingest:{tenant_id}:{window}"
    if cache.add(key, count, timeout=90):
        used = count
    else:
        try:
            used = cache.incr(key, count)
        except ValueError:  # expired between add and incr
            cache.add(key, count, timeout=90)
            used = count
    if used > limit:
        raise IngestRateLimited(retry_after=max(1, 60 - int(now.timestamp()) % 60))


def _parse_time(value, *, field: str, index: int):
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationError({f"alerts[{index}].{field}": "Give an RFC 3339 timestamp."})
    if value.startswith(ZERO_TIME_PREFIX):
        return None  # Go's zero time: Alertmanager's "no end"
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value))
    except ValueError as exc:
        raise ValidationError({f"alerts[{index}].{field}": f"{value!r} is not an RFC 3339 timestamp."}) from exc
    if parsed.tzinfo is None:
        raise ValidationError({f"alerts[{index}].{field}": f"{value!r} has no time zone; add Z or an offset."})
    return parsed


def _str_map(value, *, field: str, index: int, required: bool) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or (required and not value):
        raise ValidationError({f"alerts[{index}].{field}": "Give a non-empty object of string values." if required else "Give an object of string values."})
    for k, v in value.items():
        if not isinstance(v, str):
            raise ValidationError({f"alerts[{index}].{field}.{k}": "Values must be strings."})
    return value


def normalise(items, *, tenant_id: int, now, default_ends_after: timedelta | None) -> tuple[list[dict], list[dict]]:
    """Validate a list of Alertmanager-shaped alerts; returns (firing rows, resolved rows),
    each deduplicated by fingerprint within the batch."""
    if not isinstance(items, list):
        raise ValidationError({"alerts": "Send a JSON list of alerts ({labels, annotations, startsAt, endsAt, generatorURL})."})
    if len(items) > settings.ALERTS_INGEST_MAX_BATCH:
        raise ValidationError({"alerts": f"At most {settings.ALERTS_INGEST_MAX_BATCH} alerts per request; split the batch."})
    firing: dict[str, dict] = {}
    resolved: dict[str, dict] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError({f"alerts[{i}]": "Each alert must be an object."})
        labels = _str_map(item.get("labels"), field="labels", index=i, required=True)
        annotations = _str_map(item.get("annotations"), field="annotations", index=i, required=False)
        starts = _parse_time(item.get("startsAt"), field="startsAt", index=i) or now
        ends = _parse_time(item.get("endsAt"), field="endsAt", index=i)
        if ends is not None and ends < starts:
            raise ValidationError({f"alerts[{i}].endsAt": "endsAt is before startsAt."})
        generator = item.get("generatorURL") or ""
        if not isinstance(generator, str):
            raise ValidationError({f"alerts[{i}].generatorURL": "Must be a string."})
        fp = labels_fingerprint(tenant_id, labels)
        sev = SEVERITY_ALIASES.get(labels.get("severity", "").lower(), Severity.WARNING)
        title = (annotations.get("summary") or annotations.get("title") or labels.get("alertname") or "External alert")[:300]
        row = {
            "fp": fp, "severity": str(sev), "title": title,
            "message": annotations.get("description") or annotations.get("message") or "",
            "labels": labels, "annotations": annotations, "generator_url": generator[:1000],
            "starts_at": starts.isoformat(), "_starts": starts, "n": 1,
        }
        is_resolved = ends is not None and ends <= now
        target = resolved if is_resolved else firing
        if not is_resolved:
            row["ends_at"] = (ends or (now + default_ends_after if default_ends_after else None))
            row["ends_at"] = row["ends_at"].isoformat() if row["ends_at"] else None
        else:
            row["ends_at"] = ends.isoformat()
        previous = target.get(fp)
        if previous is not None:
            distinct = previous["_starts"] != starts
            if starts >= previous["_starts"]:
                row["n"] = previous["n"] + (1 if distinct else 0)
                target[fp] = row
            else:
                previous["n"] += 1 if distinct else 0
        else:
            target[fp] = row
    # An alert both firing and resolved in one batch: the later report wins.
    for fp in list(firing):
        if fp in resolved:
            if resolved[fp]["_starts"] >= firing[fp]["_starts"]:
                del firing[fp]
            else:
                del resolved[fp]
    return list(firing.values()), list(resolved.values())


_FIRING_SQL = """
INSERT INTO alerts_alert (
    tenant_id, created_at, updated_at, alert_type, severity, status, source, title, message,
    object_id, resource_type, resource_id, labels, annotations, generator_url, fingerprint,
    occurrences, first_seen, last_seen, starts_at, ends_at, silenced, escalation_step,
    escalation_round, metadata)
SELECT %(tenant)s, %(now)s, %(now)s, %(type)s, i.severity, 'firing', %(source)s, i.title, i.message,
    '', '', '', i.labels, i.annotations, i.generator_url, i.fp,
    i.n, i.starts_at, %(now)s, i.starts_at, i.ends_at, i.silenced, 0, 0, '{}'::jsonb
FROM jsonb_to_recordset(%(rows)s::jsonb) AS i(
    fp text, severity text, title text, message text, labels jsonb, annotations jsonb,
    generator_url text, n integer, starts_at timestamptz, ends_at timestamptz, silenced boolean)
ON CONFLICT (tenant_id, fingerprint) WHERE status <> 'resolved' DO UPDATE SET
    occurrences = alerts_alert.occurrences + CASE WHEN EXCLUDED.starts_at = alerts_alert.starts_at
        THEN EXCLUDED.occurrences - 1 ELSE EXCLUDED.occurrences END,
    last_seen = EXCLUDED.last_seen,
    updated_at = EXCLUDED.updated_at,
    starts_at = GREATEST(EXCLUDED.starts_at, alerts_alert.starts_at),
    ends_at = EXCLUDED.ends_at,
    severity = EXCLUDED.severity,
    title = EXCLUDED.title,
    message = EXCLUDED.message,
    annotations = EXCLUDED.annotations,
    generator_url = EXCLUDED.generator_url,
    silenced = EXCLUDED.silenced
RETURNING id, (xmax = 0) AS inserted, severity, silenced, fingerprint
"""

_RESOLVED_SQL = """
WITH i AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
        fp text, severity text, title text, message text, labels jsonb, annotations jsonb,
        generator_url text, n integer, starts_at timestamptz, ends_at timestamptz, silenced boolean)
), closed AS (
    UPDATE alerts_alert a SET status = 'resolved', resolved_at = i.ends_at, ends_at = i.ends_at,
        last_seen = %(now)s, updated_at = %(now)s, next_escalation_at = NULL
    FROM i WHERE a.tenant_id = %(tenant)s AND a.fingerprint = i.fp AND a.status <> 'resolved'
    RETURNING a.id, a.fingerprint
), added AS (
    INSERT INTO alerts_alert (
        tenant_id, created_at, updated_at, alert_type, severity, status, source, title, message,
        object_id, resource_type, resource_id, labels, annotations, generator_url, fingerprint,
        occurrences, first_seen, last_seen, starts_at, ends_at, resolved_at, silenced,
        escalation_step, escalation_round, metadata)
    SELECT %(tenant)s, %(now)s, %(now)s, %(type)s, i.severity, 'resolved', %(source)s, i.title, i.message,
        '', '', '', i.labels, i.annotations, i.generator_url, i.fp,
        i.n, i.starts_at, %(now)s, i.starts_at, i.ends_at, i.ends_at, i.silenced, 0, 0, '{}'::jsonb
    FROM i
    WHERE NOT EXISTS (SELECT 1 FROM closed c WHERE c.fingerprint = i.fp)
      -- a row of this label set whose period overlaps the reported one: already recorded
      AND NOT EXISTS (SELECT 1 FROM alerts_alert a WHERE a.tenant_id = %(tenant)s
                      AND a.fingerprint = i.fp AND (a.resolved_at IS NULL OR a.resolved_at >= i.starts_at))
    RETURNING id
)
SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM added),
       COALESCE((SELECT array_agg(id) FROM closed), '{}')
"""


def _dump(rows: list[dict]) -> str:
    return json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], separators=(",", ":"))


def alerts_ingest(*, tenant_id: int, alerts, source_name: str = "api", default_ends_after: timedelta | None = None,
                  actor=None, now=None) -> IngestResult:
    """Upsert a batch of external alerts for one tenant; see the module docstring.

    New, unmuted alerts are announced by ONE `alert.fired` event for the batch (grouped like
    Alertmanager's notifications) and get the first matching escalation policy.
    """
    now = now or timezone.now()
    firing, resolved = normalise(alerts, tenant_id=tenant_id, now=now, default_ends_after=default_ends_after)
    result = IngestResult(received=len(alerts))
    silences = active_silences(tenant_id, now)
    windows = [w for w in candidate_windows(tenant_ids=[tenant_id], at=now) if w.is_active(now)]
    for row in firing + resolved:
        row["silenced"] = (bool(silences) and silenced_by(row["labels"], silences) is not None) or (
            bool(windows) and maintenance_for(tenant_id, row["labels"], at=now, windows=windows) is not None)
    params = {"tenant": tenant_id, "now": now, "type": AlertType.EXTERNAL, "source": AlertSource.INGEST}
    with transaction.atomic(), connection.cursor() as cur:
        new: list[tuple[int, str, str]] = []
        if firing:
            cur.execute(_FIRING_SQL, {**params, "rows": _dump(firing)})
            for pk, inserted, severity, silenced, fp in cur.fetchall():
                if inserted:
                    result.created += 1
                    if silenced:
                        result.silenced += 1
                    else:
                        new.append((pk, severity, fp))
                else:
                    result.updated += 1
        if resolved:
            cur.execute(_RESOLVED_SQL, {**params, "rows": _dump(resolved)})
            closed, added, closed_ids = cur.fetchone()
            result.resolved = closed + added
            if closed_ids:
                _announce_resolved(tenant_id, list(closed_ids), actor)
        if new:
            new = _drop_inhibited(tenant_id, new, {r["fp"]: r["labels"] for r in firing})
            _arm_policies(tenant_id, new, now)
            _announce(tenant_id, new, firing, source_name, actor)
    return result


def _announce_resolved(tenant_id: int, ids: list[int], actor) -> None:
    """One grouped `alert.resolved` per batch (no notify block: like auto-resolve it is news for
    handlers — the incident loop resolves linked tickets); `ticket_alert_ids` lists every
    resolved alert that has a ticket."""
    with_ticket = list(Alert.objects.filter(pk__in=ids, ticket__isnull=False).values_list("pk", flat=True))
    publish("alert.resolved", tenant=tenant_id, actor=actor, payload={
        "id": min(ids), "object_type": "alerts.alert", "title": f"{len(ids)} alert(s) resolved by the source",
        "url": "/admin/alerts/alert/?status__exact=resolved", "count": len(ids), "alert_ids": sorted(ids)[:100],
        "ticket_alert_ids": with_ticket,
    })


def _drop_inhibited(tenant_id: int, new, labels_by_fp) -> list:
    rules = list(InhibitRule.objects.filter(tenant_id=tenant_id, enabled=True))
    if not rules:
        return new
    kept = []
    for pk, severity, fp in new:
        if inhibited_by(tenant_id, labels_by_fp[fp], exclude_id=pk, rules=rules) is None:
            kept.append((pk, severity, fp))
    return kept


def _arm_policies(tenant_id: int, new, now) -> None:
    policies = list(EscalationPolicy.objects.filter(tenant_id=tenant_id, enabled=True).order_by("name"))
    taken: set[int] = set()
    for pol in policies:
        if pol.alert_types and AlertType.EXTERNAL not in pol.alert_types:
            continue
        floor = SEVERITY_RANK[Severity(pol.min_severity)]
        ids = [pk for pk, sev, _ in new if pk not in taken and SEVERITY_RANK[Severity(sev)] >= floor]
        if ids:
            Alert.objects.filter(pk__in=ids, status=AlertStatus.FIRING).update(
                escalation_policy=pol, escalation_step=0,
                next_escalation_at=now + timedelta(minutes=pol.steps[0]["wait_minutes"]),
            )
            taken.update(ids)


def _announce(tenant_id: int, new, firing: list[dict], source_name: str, actor) -> None:
    if not new:
        return
    worst = max((sev for _, sev, _ in new), key=lambda s: SEVERITY_RANK[Severity(s)])
    user_ids, channels = subscribers(tenant_id, AlertType.EXTERNAL, worst)
    names = sorted({r["labels"].get("alertname", "") for r in firing if r["fp"] in {fp for _, _, fp in new}} - {""})
    title = f"{len(new)} new alert(s) from {source_name}" + (f": {', '.join(names[:5])}" if names else "")
    if len(new) == 1:
        title = next(r["title"] for r in firing if r["fp"] == new[0][2])
    notify = {"type": "alert_external", "priority": {"critical": "urgent", "warning": "high"}.get(worst, "low"),
              "title": title, "action_url": f"/admin/alerts/alert/{new[0][0]}/change/" if len(new) == 1 else "/admin/alerts/alert/?status__exact=firing",
              "action_label": "Open alerts"}
    if user_ids:
        notify["user_ids"] = user_ids
    else:
        notify["roles"] = list(BROADCAST_ROLES)
    if channels:
        notify["channels"] = channels
    publish("alert.fired", tenant=tenant_id, actor=actor, payload={
        "id": new[0][0], "object_type": "alerts.alert", "title": title, "url": notify["action_url"],
        "alert_type": AlertType.EXTERNAL, "severity": worst, "count": len(new),
        "alert_ids": [pk for pk, _, _ in new][:100], "source": source_name, "notify": notify,
    })
