"""Ingestion of external alerts (Alertmanager's webhook and `POST /api/v2/alerts` shape):
validated in Python, then upserted set-based — one `INSERT … SELECT FROM jsonb_to_recordset …
ON CONFLICT (tenant_id, fingerprint) WHERE status <> 'resolved' DO UPDATE` per batch for firing
alerts and one CTE statement for resolved ones. Idempotent on retry: a repeated delivery with
the same `startsAt` updates `last_seen` but is not a new occurrence.

Each firing period of an alert is its own row (like Alertmanager's alert instances), so a label
set that fires, resolves and fires again leaves two rows of history — the rule
services.alert_raise follows too. PostgreSQL takes the set-based statements below; any other
database (SQLite under `make run`) the portable ORM path with the same results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from apps.core.events import enqueue_dispatch, insert_select_params, insert_select_sql, publish

from . import resend
from .choices import SEVERITY_RANK, AlertSource, AlertStatus, AlertType, Severity
from .ingest_config import TenantConfig, rate_and_version, tenant_config
from .matching import matches_all
from .models import Alert
from .notify import BROADCAST_ROLES, inhibited_by, maintenance_for, silenced_by, with_labels

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
    unchanged: int = 0  # of `updated`: resends that changed nothing (at most last_seen/ends_at written)

    def as_dict(self) -> dict:
        return dict(vars(self))  # flat integers: dataclasses.asdict's deep copy is ~10x the cost


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


def _is_str_map(value) -> bool:
    if value.__class__ is not dict:
        return False
    for v in value.values():  # noqa: SIM110 - a loop is three times faster than all(<genexpr>)
        if v.__class__ is not str:
            return False
    return True


def _timestamp(value, seen: dict, *, field: str, index: int) -> tuple:
    """(datetime or None, its ISO text) of an RFC 3339 value, remembered per batch in `seen`
    (a batch's alerts usually share a few timestamps)."""
    parsed = _parse_time(value, field=field, index=index)
    pair = (parsed, parsed.isoformat() if parsed is not None else None)
    if value.__class__ is str:
        seen[value] = pair
    return pair


def _no_default(value):
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encoder(*, sort_keys: bool):
    """A reusable compact, ASCII-only JSON encoder (json's C encoder, built once instead of
    per call; json.dumps output byte for byte)."""
    if json.encoder.c_make_encoder is None:  # pragma: no cover - CPython always has _json
        return json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":")).encode
    encode = json.encoder.c_make_encoder(None, _no_default, json.encoder.encode_basestring_ascii, None, ":", ",",
                                         sort_keys, False, True)
    return lambda value: "".join(encode(value, 0))


# matching.canonical_labels for labels already checked to be strings (a test proves the
# fingerprints equal labels_fingerprint's); the text is also what the upsert stores.
_CANONICAL = _encoder(sort_keys=True)
_COMPACT = _encoder(sort_keys=False)
_QUOTE = json.encoder.encode_basestring_ascii
_SEVERITY_TEXT = {k: str(v) for k, v in SEVERITY_ALIASES.items()}
_WARNING = str(Severity.WARNING)
_RANK = {str(k): v for k, v in SEVERITY_RANK.items()}
_RANKS_JSON = json.dumps(_RANK)
_RECORD = ('{"fp":"%s","severity":"%s","title":%s,"message":%s,"labels":%s,"annotations":%s,"generator_url":%s,'
           '"starts_at":"%s","ends_at":%s,"n":%d,"silenced":%s,"policy":%s,"escalate_at":%s}')


def _records(rows: list[dict]) -> str:
    """The rows as the JSON array the upserts read with jsonb_to_recordset."""
    return "[" + ",".join([_RECORD % (
        r["fp"], r["severity"], _QUOTE(r["title"]), _QUOTE(r["message"]), _CANONICAL(r["labels"]), _COMPACT(r["annotations"]),
        _QUOTE(r["generator_url"]), r["starts_at"], f'"{r["ends_at"]}"' if r["ends_at"] else "null", r["n"],
        "true" if r["silenced"] else "false", r.get("policy") or "null",
        f'"{r["escalate_at"]}"' if r.get("escalate_at") else "null") for r in rows]) + "]"


# (tenant id, label pairs in the order sent) -> (fingerprint, severity, alertname): a resent label
# set is looked up instead of checked, encoded and hashed again (a source sends its labels in the
# same order each time; another order is another key with the same entry). A key is only stored
# for labels checked to be strings, and only an equal tuple finds it, so a hit is a valid label
# set. Cleared when full (~1 KB an entry).
_FINGERPRINTS: dict[tuple, tuple[str, str, str | None]] = {}
_FINGERPRINTS_MAX = 10000


def _labelset(key: tuple, tenant_id: int, labels: dict) -> tuple[str, str, str | None]:
    """The memo's entry for a checked label set: its fingerprint (matching.labels_fingerprint: the
    first 32 hex digits of SHA-256 over the tenant id, a NUL and the canonical labels), the
    severity it maps to and its alertname."""
    if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
        _FINGERPRINTS.clear()
    severity = labels.get("severity")
    entry = _FINGERPRINTS[key] = (hashlib.sha256(f"{tenant_id}\x00{_CANONICAL(labels)}".encode()).hexdigest()[:32],
                                  _SEVERITY_TEXT.get(severity.lower(), _WARNING) if severity else _WARNING,
                                  labels.get("alertname"))
    return entry


def fingerprint(tenant_id: int, labels: dict) -> str:
    """The fingerprint of a tenant's label set (string values, already checked)."""
    key = (tenant_id, *labels.items())
    return (_FINGERPRINTS.get(key) or _labelset(key, tenant_id, labels))[0]


def normalise(items, *, tenant_id: int, now, default_ends_after: timedelta | None,
              depth_check=None) -> tuple[list[dict], list[dict]]:
    """Validate a list of Alertmanager-shaped alerts; returns (firing rows, resolved rows),
    each deduplicated by fingerprint within the batch (`_records` turns them into the JSON the
    upserts read). `depth_check(n)`, when given, is called once the batch is valid with the number
    of JSON containers this walk has seen (the list, the alerts, their labels and annotations)."""
    if not isinstance(items, list):
        raise ValidationError({"alerts": "Send a JSON list of alerts ({labels, annotations, startsAt, endsAt, generatorURL})."})
    if len(items) > settings.ALERTS_INGEST_MAX_BATCH:
        raise ValidationError({"alerts": f"At most {settings.ALERTS_INGEST_MAX_BATCH} alerts per request; split the batch."})
    firing: dict[str, list] = {}  # fingerprint -> [row, starts]
    resolved: dict[str, list] = {}
    seen: dict = {}
    containers = 1 + 2 * len(items)  # the list, each alert and its labels; annotations counted below
    now_iso = now.isoformat()
    default_end = (now + default_ends_after).isoformat() if default_ends_after else None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValidationError({f"alerts[{i}]": "Each alert must be an object."})
        labels = item.get("labels")
        try:  # a resent label set is in the memo; an unhashable value (not a string) is not
            entry = _FINGERPRINTS.get((tenant_id, *labels.items())) if labels.__class__ is dict else None
        except TypeError:
            entry = None
        if entry is None:
            if not labels or not _is_str_map(labels):
                labels = _str_map(labels, field="labels", index=i, required=True)
            entry = _labelset((tenant_id, *labels.items()), tenant_id, labels)
        fp, severity, alertname = entry
        annotations = item.get("annotations")
        if annotations is None:
            annotations = {}
        else:
            containers += 1
            if not _is_str_map(annotations):
                annotations = _str_map(annotations, field="annotations", index=i, required=False)
        raw = item.get("startsAt")
        starts, starts_iso = (seen.get(raw) if raw.__class__ is str else None) or _timestamp(raw, seen, field="startsAt", index=i)
        if starts is None:
            starts, starts_iso = now, now_iso
        raw = item.get("endsAt")
        if raw is None:
            ends = ends_iso = None
        else:
            ends, ends_iso = (seen.get(raw) if raw.__class__ is str else None) or _timestamp(raw, seen, field="endsAt", index=i)
        if ends is not None and ends < starts:
            raise ValidationError({f"alerts[{i}].endsAt": "endsAt is before startsAt."})
        generator = item.get("generatorURL") or ""
        if not isinstance(generator, str):
            raise ValidationError({f"alerts[{i}].generatorURL": "Must be a string."})
        row = {
            "fp": fp, "severity": severity,
            "title": (annotations.get("summary") or annotations.get("title") or alertname or "External alert")[:300],
            "message": annotations.get("description") or annotations.get("message") or "",
            "labels": labels, "annotations": annotations, "generator_url": generator[:1000],
            "starts_at": starts_iso, "n": 1, "silenced": False,
        }
        if ends is not None and ends <= now:
            row["ends_at"] = ends_iso
            target = resolved
        else:
            row["ends_at"] = ends_iso if ends is not None else default_end
            target = firing
        previous = target.get(fp)
        if previous is None:
            target[fp] = [row, starts]
            continue
        distinct = previous[1] != starts
        if starts >= previous[1]:
            row["n"] = previous[0]["n"] + (1 if distinct else 0)
            target[fp] = [row, starts]
        else:
            previous[0]["n"] += 1 if distinct else 0
    # An alert both firing and resolved in one batch: the later report wins.
    for fp in [fp for fp in firing if fp in resolved]:
        if resolved[fp][1] >= firing[fp][1]:
            del firing[fp]
        else:
            del resolved[fp]
    if depth_check is not None:
        depth_check(containers)
    return [row for row, _ in firing.values()], [row for row, _ in resolved.values()]


_FIRING_SQL = """
INSERT INTO alerts_alert (
    tenant_id, created_at, updated_at, alert_type, severity, status, source, title, message,
    object_id, resource_type, resource_id, labels, annotations, generator_url, fingerprint,
    occurrences, first_seen, last_seen, starts_at, ends_at, silenced, escalation_step,
    escalation_round, escalation_policy_id, next_escalation_at, metadata)
SELECT %(tenant)s, %(now)s, %(now)s, %(type)s, i.severity, 'firing', %(source)s, i.title, i.message,
    '', '', '', i.labels, i.annotations, i.generator_url, i.fp,
    i.n, i.starts_at, %(now)s, i.starts_at, i.ends_at, i.silenced, 0, 0, i.policy, i.escalate_at, '{}'::jsonb
FROM jsonb_to_recordset(%(rows)s::jsonb) AS i(
    fp text, severity text, title text, message text, labels jsonb, annotations jsonb,
    generator_url text, n integer, starts_at timestamptz, ends_at timestamptz, silenced boolean,
    policy bigint, escalate_at timestamptz)
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
RETURNING id, (xmax = 0) AS inserted, fingerprint, silenced, severity, title, labels->>'alertname' AS alertname
"""

# The batch's `alert.fired` event, written by core.events' set-based fragment (publish()'s row:
# the columns not given here are its parameters) from a relation `new(id, severity, title,
# alertname)` of the newly fired, unmuted alerts; nothing when it is empty. The payload is the one
# notify.publish_alert_event gives a single alert, grouped: `count`, `alert_ids` (first 100),
# the title of the one alert or "N new alert(s) from <source>: <first 5 alertnames>", the worst
# severity and its audience (%(audience)s: severity -> notify fields, from _audience()).
_EVENT_PAYLOAD = """jsonb_build_object(
        'id', s.first_id, 'object_type', 'alerts.alert', 'title', s.title, 'url', s.url, 'alert_type', %(type)s::text,
        'severity', s.worst, 'count', s.n, 'alert_ids', to_jsonb(s.ids[1:100]), 'source', %(source_name)s::text,
        'notify', (%(audience)s::jsonb -> s.worst) || jsonb_build_object('title', s.title, 'action_url', s.url))"""
_EVENT_FROM = """
FROM (
    SELECT t.*,
        CASE WHEN t.n = 1 THEN t.first_title
             ELSE format('%%s new alert(s) from %%s', t.n, %(source_name)s::text)
                  || COALESCE(': ' || array_to_string(t.names[1:5], ', '), '') END AS title,
        CASE WHEN t.n = 1 THEN format('/admin/alerts/alert/%%s/change/', t.first_id)
             ELSE '/admin/alerts/alert/?status__exact=firing' END AS url
    FROM (
        SELECT count(*) AS n, min(id) AS first_id, array_agg(id ORDER BY id) AS ids,
            (array_agg(title ORDER BY id))[1] AS first_title,
            (array_agg(severity ORDER BY (%(ranks)s::jsonb ->> severity)::int DESC))[1] AS worst,
            -- sorted by code point, as Python's sorted()
            array_agg(DISTINCT alertname COLLATE "C" ORDER BY alertname COLLATE "C") FILTER (WHERE alertname <> '') AS names
        FROM new
    ) t
    WHERE t.n > 0
) s
"""


def _event_sql() -> str:
    return insert_select_sql({"id": "%(event_id)s::uuid", "name": "'alert.fired'", "tenant_id": "%(tenant)s::bigint",
                              "payload": _EVENT_PAYLOAD}) + _EVENT_FROM


@functools.cache
def _firing_announced_sql() -> str:
    """A batch of firing alerts only, for a tenant without inhibition rules (nothing to decide
    between the upsert and the announcement): upsert and event in ONE statement, its own
    transaction."""
    return ("WITH up AS (" + _FIRING_SQL + "), new AS (SELECT id, severity, title, alertname FROM up WHERE inserted AND NOT silenced),"
            " ev AS (" + _event_sql() + " RETURNING 1)\n"
            "SELECT up.*, (SELECT count(*) FROM ev) FROM up")


@functools.cache
def _announce_sql() -> str:
    """The same event from the new alerts that inhibition left (the transactional path)."""
    return ("WITH new AS (SELECT * FROM jsonb_to_recordset(%(new)s::jsonb) AS r(id bigint, severity text, title text, alertname text))"
            + _event_sql() + " RETURNING 1")


# Both probes compare `tenant_id + 0`: they reach rows through the fingerprint-led indexes
# (Alert.of_fingerprint says why).
_RESOLVED_SQL = """
WITH i AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
        fp text, severity text, title text, message text, labels jsonb, annotations jsonb,
        generator_url text, n integer, starts_at timestamptz, ends_at timestamptz, silenced boolean)
), closed AS (
    UPDATE alerts_alert a SET status = 'resolved', resolved_at = i.ends_at, ends_at = i.ends_at,
        last_seen = %(now)s, updated_at = %(now)s, next_escalation_at = NULL
    FROM i WHERE a.tenant_id + 0 = %(tenant)s AND a.fingerprint = i.fp AND a.status <> 'resolved'
    RETURNING a.id, a.fingerprint, a.ticket_id
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
      -- a resolved row of this label set whose period overlaps the reported one: already
      -- recorded (an open row is one of `closed`)
      AND NOT EXISTS (SELECT 1 FROM alerts_alert a WHERE a.tenant_id + 0 = %(tenant)s AND a.fingerprint = i.fp
                      AND a.status = 'resolved' AND (a.resolved_at IS NULL OR a.resolved_at >= i.starts_at))
    RETURNING id
)
SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM added),
       COALESCE((SELECT array_agg(id ORDER BY id) FROM closed), '{}'),
       COALESCE((SELECT array_agg(id ORDER BY id) FROM closed WHERE ticket_id IS NOT NULL), '{}')
"""


def ingest_gate(*, tenant_id: int, count: int, now=None, authorize=None) -> TenantConfig:
    """Count `count` alerts against the tenant's per-minute limit and return its current
    configuration snapshot — one Redis round trip for both. `authorize(snapshot)` may refuse
    the caller first (a token revoked since); then IngestRateLimited when the limit is passed."""
    now = now or timezone.now()
    used, version = rate_and_version(tenant_id, count, now)
    cfg = tenant_config(tenant_id, version=version)
    if authorize is not None:
        authorize(cfg)
    if used > settings.ALERTS_INGEST_RATE_PER_MINUTE:
        raise IngestRateLimited(retry_after=max(1, 60 - int(now.timestamp()) % 60))
    return cfg


def alerts_ingest(*, tenant_id: int, alerts, source_name: str = "api", default_ends_after: timedelta | None = None,
                  actor=None, now=None, config: TenantConfig | None = None, depth_check=None) -> IngestResult:
    """Upsert a batch of external alerts for one tenant; see the module docstring.

    Silenced alerts (a silence or a maintenance window) are stored and notify nobody. New,
    unmuted alerts get the first matching escalation policy in the same INSERT and are
    announced by ONE `alert.fired` event for the batch (grouped like Alertmanager's
    notifications); inhibited ones lose the policy and the announcement. `config` is the
    tenant's snapshot from `ingest_gate` (read here when not given); `depth_check` goes to
    `normalise` (the token view's check of the body's depth, before anything is written).
    """
    now = now or timezone.now()
    firing, resolved = normalise(alerts, tenant_id=tenant_id, now=now, default_ends_after=default_ends_after,
                                 depth_check=depth_check)
    cfg = config if config is not None else tenant_config(tenant_id)
    result = IngestResult(received=len(alerts))
    silences, windows = cfg.active_silences(now), cfg.active_windows(now)
    if silences or windows:
        for row in firing + resolved:
            row["silenced"] = _muted(tenant_id, row["labels"], silences, windows, now)
    if firing:
        firing = _skip_resent(tenant_id, firing, now, result)
        if not firing and not resolved:
            return result
    if cfg.policies:
        _arm_policies(firing, cfg, now)
    params = {"tenant": tenant_id, "now": now, "type": AlertType.EXTERNAL, "source": AlertSource.INGEST}
    set_based = _set_based()
    if set_based and firing and not resolved and not cfg.inhibit_rules:
        _ingest_firing(firing, params, cfg, source_name, actor, result)
        return result
    with transaction.atomic():
        if set_based:
            new, closed_ids, ticket_ids = _upsert_set_based(firing, resolved, params, result)
        else:
            new, closed_ids, ticket_ids = _upsert_portable(firing, resolved, params, result)
        if closed_ids:
            _announce_resolved(tenant_id, closed_ids, ticket_ids, actor)
        if new and cfg.inhibit_rules:
            labels = {row["fp"]: row["labels"] for row in firing}
            kept = {pk for pk, _ in _drop_inhibited(tenant_id, [(pk, labels[fp]) for pk, fp, *_ in new], cfg.inhibit_rules)}
            new = [n for n in new if n[0] in kept]
        if new and set_based:
            event_params = _event_params(params, cfg, source_name, actor)
            new_json = json.dumps([{"id": pk, "severity": sev, "title": title, "alertname": name} for pk, _fp, sev, title, name in new])
            with _statement_cursor() as cur:
                cur.execute(_announce_sql(), {**event_params, "new": new_json}, prepare=True)
            transaction.on_commit(partial(enqueue_dispatch, event_params["event_id"]))
        elif new:
            publish("alert.fired", tenant=tenant_id, actor=actor, payload=_announcement(new, cfg, source_name))
    return result


def _skip_resent(tenant_id: int, firing: list[dict], now, result: IngestResult) -> list[dict]:
    """The firing rows that need the upsert; unchanged resends of open rows write nothing, or
    only their due last_seen/ends_at in one UPDATE (apps/alerts/resend.py)."""
    if _set_based():
        with _statement_cursor() as cur:
            batch = "[" + ",".join([f'{{"fp":"{row["fp"]}","ann":{_COMPACT(row["annotations"])}}}' for row in firing]) + "]"
            cur.execute(resend.OPEN_SQL, (batch, tenant_id), prepare=True)
            rows = cur.fetchall()
    else:
        rows = resend.open_rows_orm(tenant_id, firing)
    write, due, quiet = resend.split(firing, rows, now)
    if due:
        resend.bump(due, now)
    result.updated += quiet + len(due)
    result.unchanged += quiet + len(due)
    return write


def _set_based() -> bool:
    """PostgreSQL takes the set-based statements; any other database (SQLite, `make run`'s
    default) the portable ORM path with the same rules and results."""
    return connection.vendor == "postgresql"


def _upsert_set_based(firing: list[dict], resolved: list[dict], params: dict, result: IngestResult) -> tuple[list, list, list]:
    """The upsert statements in the caller's transaction: (new unmuted alerts as (id,
    fingerprint, severity, title, alertname), ids the batch resolved, those of them with a ticket)."""
    new, closed_ids, ticket_ids = [], [], []
    with _statement_cursor() as cur:
        if firing:
            cur.execute(_FIRING_SQL, {**params, "rows": _records(firing)}, prepare=True)
            new = _count_firing(cur.fetchall(), result)
        if resolved:
            cur.execute(_RESOLVED_SQL, {**params, "rows": _records(resolved)}, prepare=True)
            closed, added, closed_ids, ticket_ids = cur.fetchone()
            result.resolved = closed + added
    return new, list(closed_ids), list(ticket_ids)


def _at(text: str | None):
    return datetime.fromisoformat(text) if text else None


def _upsert_portable(firing: list[dict], resolved: list[dict], params: dict, result: IngestResult) -> tuple[list, list, list]:
    """What `_FIRING_SQL` and `_RESOLVED_SQL` do, through the ORM (any database), in the caller's
    transaction; same return as `_upsert_set_based`."""
    tenant_id, now = params["tenant"], params["now"]
    rows = Alert.objects.select_for_update().filter(tenant_id=tenant_id)
    new, closed, seen_resolved = [], [], {}
    if firing:
        open_by_fp = {a.fingerprint: a for a in rows.filter(fingerprint__in=[r["fp"] for r in firing]).exclude(status=AlertStatus.RESOLVED)}
        created, changed = [], []
        for row in firing:
            starts = _at(row["starts_at"])
            alert = open_by_fp.get(row["fp"])
            if alert is None:
                created.append(_new_alert(row, tenant_id, now, AlertStatus.FIRING, policy=row.get("policy"),
                                          next_escalation_at=_at(row.get("escalate_at"))))
                continue
            alert.occurrences += row["n"] - (1 if starts == alert.starts_at else 0)
            alert.last_seen = alert.updated_at = now
            alert.starts_at = max(starts, alert.starts_at) if alert.starts_at else starts
            alert.ends_at = _at(row["ends_at"])
            alert.severity, alert.title, alert.message = row["severity"], row["title"], row["message"]
            alert.annotations, alert.generator_url, alert.silenced = row["annotations"], row["generator_url"], row["silenced"]
            changed.append(alert)
        if changed:
            Alert.objects.bulk_update(changed, _UPDATED_FIELDS)
        Alert.objects.bulk_create(created)
        result.updated += len(changed)
        for alert in created:
            result.created += 1
            if alert.silenced:
                result.silenced += 1
            else:
                new.append((alert.pk, alert.fingerprint, alert.severity, alert.title, alert.labels.get("alertname")))
    if resolved:
        fps = [r["fp"] for r in resolved]
        open_by_fp = {a.fingerprint: a for a in rows.filter(fingerprint__in=fps).exclude(status=AlertStatus.RESOLVED)}
        for fp, resolved_at in rows.filter(fingerprint__in=fps, status=AlertStatus.RESOLVED).values_list("fingerprint", "resolved_at"):
            seen_resolved.setdefault(fp, []).append(resolved_at)
        added = []
        for row in resolved:
            ends, alert = _at(row["ends_at"]), open_by_fp.get(row["fp"])
            if alert is not None:
                alert.status, alert.resolved_at, alert.ends_at = AlertStatus.RESOLVED, ends, ends
                alert.last_seen = alert.updated_at = now
                alert.next_escalation_at = None
                closed.append(alert)
            # a resolved row whose period overlaps the reported one: already recorded
            elif not any(at is None or at >= _at(row["starts_at"]) for at in seen_resolved.get(row["fp"], ())):
                added.append(_new_alert(row, tenant_id, now, AlertStatus.RESOLVED, resolved_at=ends))
        if closed:
            Alert.objects.bulk_update(closed, ["status", "resolved_at", "ends_at", "last_seen", "updated_at", "next_escalation_at"])
        Alert.objects.bulk_create(added)
        result.resolved = len(closed) + len(added)
    closed.sort(key=lambda a: a.pk)
    return new, [a.pk for a in closed], [a.pk for a in closed if a.ticket_id is not None]


_UPDATED_FIELDS = ["occurrences", "last_seen", "updated_at", "starts_at", "ends_at", "severity", "title", "message",
                   "annotations", "generator_url", "silenced"]


def _new_alert(row: dict, tenant_id: int, now, status: str, *, policy=None, next_escalation_at=None, resolved_at=None) -> Alert:
    starts = _at(row["starts_at"])
    return Alert(
        tenant_id=tenant_id, created_at=now, updated_at=now, alert_type=AlertType.EXTERNAL, severity=row["severity"], status=status,
        source=AlertSource.INGEST, title=row["title"], message=row["message"], labels=row["labels"], annotations=row["annotations"],
        generator_url=row["generator_url"], fingerprint=row["fp"], occurrences=row["n"], first_seen=starts, last_seen=now,
        starts_at=starts, ends_at=_at(row["ends_at"]), resolved_at=resolved_at, silenced=row["silenced"],
        escalation_policy_id=policy, next_escalation_at=next_escalation_at,
    )


def _announcement(new: list[tuple], cfg: TenantConfig, source_name: str) -> dict:
    """The batch's `alert.fired` payload for the new, unmuted alerts `new` — what `_EVENT_PAYLOAD`
    builds in SQL (the portable path)."""
    ids = sorted(pk for pk, *_ in new)
    first = min(new)
    worst = max((sev for _pk, _fp, sev, *_ in new), key=lambda sev: _RANK[sev])
    names = sorted({name for *_, name in new if name})
    if len(new) == 1:
        title, url = first[3], f"/admin/alerts/alert/{first[0]}/change/"
    else:
        title = f"{len(new)} new alert(s) from {source_name}" + (": " + ", ".join(names[:5]) if names else "")
        url = "/admin/alerts/alert/?status__exact=firing"
    notify = {**json.loads(cfg.memo("audience", _audience, cfg))[worst], "title": title, "action_url": url}
    return {"id": first[0], "object_type": "alerts.alert", "title": title, "url": url, "alert_type": str(AlertType.EXTERNAL),
            "severity": worst, "count": len(new), "alert_ids": ids[:100], "source": source_name, "notify": notify}


def _ingest_firing(firing: list[dict], params: dict, cfg: TenantConfig, source_name: str, actor, result: IngestResult) -> None:
    """The common batch (firing alerts, no inhibition rules): one statement upserts the alerts
    and writes the batch's event — its own transaction (a savepoint inside a caller's); the
    event's dispatch is enqueued after commit."""
    event_params = _event_params(params, cfg, source_name, actor)
    with (transaction.atomic() if connection.in_atomic_block else nullcontext()), _statement_cursor() as cur:
        cur.execute(_firing_announced_sql(), {**event_params, "rows": _records(firing)}, prepare=True)
        rows = cur.fetchall()
        _count_firing(rows, result)
        if rows[0][-1]:
            transaction.on_commit(partial(enqueue_dispatch, event_params["event_id"]))


def _count_firing(rows: list[tuple], result: IngestResult) -> list[tuple]:
    """Count the upsert's RETURNING rows into `result`; the new, unmuted alerts to announce as
    (id, fingerprint, severity, title, alertname)."""
    new = []
    for pk, inserted, fp, silenced, severity, title, alertname, *_ in rows:
        if not inserted:
            result.updated += 1
        elif silenced:
            result.created += 1
            result.silenced += 1
        else:
            result.created += 1
            new.append((pk, fp, severity, title, alertname))
    return new


def _event_params(params: dict, cfg: TenantConfig, source_name: str, actor) -> dict:
    return {**params, **insert_select_params(params["now"], actor=actor), "event_id": uuid.uuid4(), "source_name": source_name,
            "audience": cfg.memo("audience", _audience, cfg), "ranks": _RANKS_JSON}


def _audience(cfg: TenantConfig) -> str:
    """Per severity, the `notify` fields of a batch announcement whose worst alert has that
    severity (the subscribers of external alerts, else the broadcast roles); JSON for _EVENT_PAYLOAD."""
    out = {}
    for severity in _RANK:
        user_ids, channels = cfg.subscribers(severity)
        notify = {"type": "alert_external", "priority": {"critical": "urgent", "warning": "high"}.get(severity, "low"),
                  "action_label": "Open alerts"}
        if user_ids:
            notify["user_ids"] = user_ids
        else:
            notify["roles"] = list(BROADCAST_ROLES)
        if channels:
            notify["channels"] = channels
        out[severity] = notify
    return json.dumps(out)


@contextmanager
def _statement_cursor():
    """A server-side-binding cursor on Django's connection (in the caller's transaction, or in
    autocommit for a one-statement batch): the batch travels as one parameter instead of a
    quoted literal, and the statements are prepared once per connection. As Django's own
    cursor, it health-checks a kept connection once per request and (re)connects first;
    database errors surface as django.db errors."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        yield cur


def _muted(tenant_id: int, labels: dict, silences: list, windows: list, now) -> bool:
    """A silence matches, or an active maintenance window covers the labels (ingested alerts
    have no related object, so only tenant-wide and label-scoped windows apply)."""
    return (bool(silences) and silenced_by(labels, silences) is not None) or (
        bool(windows) and maintenance_for(tenant_id, labels, at=now, windows=windows) is not None)


def _arm_policies(firing: list[dict], cfg: TenantConfig, now) -> None:
    """The escalation policy a new alert gets, written by the INSERT (an existing alert keeps its own)."""
    for row in firing:
        if row["silenced"]:
            continue
        pol = cfg.policy_for(row["severity"])
        if pol is not None:
            row["policy"] = pol.pk
            row["escalate_at"] = (now + timedelta(minutes=pol.steps[0]["wait_minutes"])).isoformat()


def _announce_resolved(tenant_id: int, ids: list[int], ticket_ids: list[int], actor) -> None:
    """One grouped `alert.resolved` per batch (no notify block: like auto-resolve it is news for
    handlers — the incident loop resolves linked tickets); `ticket_alert_ids` lists every
    resolved alert that has a ticket."""
    publish("alert.resolved", tenant=tenant_id, actor=actor, payload={
        "id": min(ids), "object_type": "alerts.alert", "title": f"{len(ids)} alert(s) resolved by the source",
        "url": "/admin/alerts/alert/?status__exact=resolved", "count": len(ids), "alert_ids": sorted(ids)[:100],
        "ticket_alert_ids": ticket_ids,
    })


_INHIBIT_SOURCES_MAX = 5000


def _drop_inhibited(tenant_id: int, new: list[tuple[int, dict]], rules) -> list[tuple[int, dict]]:
    """New alerts `(id, labels)` minus those an inhibition rule mutes (a firing source alert
    with the rule's `equal` labels, not the alert itself); one query per rule with targets in
    the batch. The muted ones lose the escalation policy the INSERT gave them."""
    muted: set[int] = set()
    for rule in rules:
        targets = [(pk, labels) for pk, labels in new if pk not in muted and matches_all(rule.target_matchers, labels)]
        if not targets:
            continue
        exact = {m["name"]: m["value"] for m in rule.source_matchers if m.get("op", "=") == "="}
        rows = list(with_labels(Alert.objects.filter(tenant_id=tenant_id, status=AlertStatus.FIRING), exact)
                    .values_list("pk", "labels")[:_INHIBIT_SOURCES_MAX + 1])
        if len(rows) > _INHIBIT_SOURCES_MAX:  # too many candidate sources: ask per alert
            muted.update(pk for pk, labels in targets if inhibited_by(tenant_id, labels, exclude_id=pk, rules=[rule]))
            continue
        sources: dict[tuple, set[int]] = {}
        for pk, labels in rows:
            if matches_all(rule.source_matchers, labels):
                sources.setdefault(tuple(str(labels.get(n, "")) for n in rule.equal), set()).add(pk)
        for pk, labels in targets:
            found = sources.get(tuple(str(labels.get(n, "")) for n in rule.equal), ())
            if found and (len(found) > 1 or pk not in found):
                muted.add(pk)
    if not muted:
        return new
    Alert.objects.filter(pk__in=muted, escalation_policy__isnull=False).update(escalation_policy=None, next_escalation_at=None)
    return [(pk, labels) for pk, labels in new if pk not in muted]
