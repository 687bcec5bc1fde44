"""Resent alerts: a source such as Prometheus resends every firing alert each evaluation
interval, so most ingested alerts repeat an open row unchanged. Before the upserts, one query
reads the batch's open rows (the partial unique index of open fingerprints); a resend equal to
its row in everything the upsert would write costs no write at all while its `last_seen` is
younger than ALERTS_INGEST_LAST_SEEN_SECONDS (G) and its stored `ends_at` still lies more than
G/2 ahead; otherwise only `last_seen` and `ends_at` are bumped, for the whole batch in ONE
UPDATE. Anything else (new, changed, ended, another start) takes the upsert as before.
docs/alerts.md, "Resent alerts".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Case, DateTimeField, Value, When

from .choices import AlertStatus
from .models import Alert

# The open row of each fingerprint: one probe of alerts_alert_open_fingerprint (fingerprint, tenant
# WHERE open) each — LIMIT 1 (there is one) keeps the planner from a hash join over the tenant's rows,
# `tenant_id + 0` from an index led by tenant (Alert.of_fingerprint) —
# its annotations compared with the resend's by PostgreSQL and its times as integer microseconds
# (parsing 300 timestamps in Python cost more than the query); the batch is one JSON parameter
# [{fp, ann}] (psycopg's text[] dumping escapes each element in Python).
OPEN_SQL = """SELECT a.id, a.fingerprint, a.severity, a.title, a.message, a.annotations = i.ann::jsonb, a.generator_url,
    (extract(epoch FROM a.starts_at) * 1000000)::int8, (extract(epoch FROM a.ends_at) * 1000000)::int8, a.silenced,
    (extract(epoch FROM a.last_seen) * 1000000)::int8
FROM jsonb_to_recordset(%s::jsonb) AS i(fp text, ann jsonb)
CROSS JOIN LATERAL (SELECT * FROM alerts_alert o WHERE o.tenant_id + 0 = %s AND o.fingerprint = i.fp AND o.status <> 'resolved'
                    LIMIT 1) a"""
_FIELDS = ("pk", "fingerprint", "severity", "title", "message", "annotations", "generator_url", "starts_at", "ends_at",
           "silenced", "last_seen")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _us(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _US


def open_rows_orm(tenant_id: int, firing: list[dict]) -> list[tuple]:
    """OPEN_SQL's rows through the ORM (any database)."""
    annotations = {row["fp"]: row["annotations"] for row in firing}
    rows = (Alert.objects.filter(tenant_id=tenant_id, fingerprint__in=list(annotations)).exclude(status=AlertStatus.RESOLVED)
            .values_list(*_FIELDS))
    return [(pk, fp, sev, title, msg, ann == annotations[fp], url, _us(starts), _us(ends), silenced, _us(seen))
            for pk, fp, sev, title, msg, ann, url, starts, ends, silenced, seen in rows]


def split(firing: list[dict], open_rows: list[tuple], now: datetime) -> tuple[list[dict], list[tuple], int]:
    """(rows the upsert must write, (id, ends_at) of unchanged rows whose last_seen/ends_at are due,
    number of unchanged resends that write nothing)."""
    granularity = timedelta(seconds=settings.ALERTS_INGEST_LAST_SEEN_SECONDS)
    stale_before, ends_margin = _us(now - granularity), _us(now + granularity / 2)
    by_fp = {row[1]: row for row in open_rows}
    parsed: dict = {}  # a batch's alerts share a few timestamps

    def at(text):
        if text is None:
            return None, None
        value = parsed.get(text)
        if value is None:
            moment = datetime.fromisoformat(text)
            value = parsed[text] = (moment, _us(moment))
        return value

    write, bump, quiet = [], [], 0
    for row in firing:
        cur = by_fp.get(row["fp"])
        if cur is None or row["n"] != 1 or not _same(row, cur, at(row["starts_at"])[1]):
            write.append(row)
            continue
        ends, ends_us = at(row["ends_at"])
        old_ends = cur[8]
        if (ends_us is None) != (old_ends is None) or (ends_us is not None and ends_us < old_ends):
            write.append(row)  # an end given, withdrawn or brought forward: a change
        elif cur[10] <= stale_before or (old_ends is not None and ends_us > old_ends and old_ends <= ends_margin):
            bump.append((cur[0], ends))
        else:
            quiet += 1
    return write, bump, quiet


def _same(row: dict, cur: tuple, starts_us: int) -> bool:
    """Everything the upsert writes besides last_seen/ends_at/updated_at equals the open row
    (labels are equal by fingerprint; one start, so no new occurrence)."""
    _pk, _fp, severity, title, message, same_annotations, generator_url, starts, _ends, silenced, _seen = cur
    return (starts == starts_us and same_annotations and severity == row["severity"] and title == row["title"]
            and message == row["message"] and silenced == row["silenced"] and generator_url == row["generator_url"])


def bump(rows: list[tuple], now: datetime) -> int:
    """last_seen = now and the resend's ends_at for open rows `(id, ends_at)`: ONE UPDATE (a CASE
    when the batch's ends differ). A row resolved meanwhile keeps its own end."""
    ends = {e for _pk, e in rows}
    if len(ends) == 1:
        value = Value(next(iter(ends)), output_field=DateTimeField())
    else:
        value = Case(*[When(pk=pk, then=Value(e, output_field=DateTimeField())) for pk, e in rows], output_field=DateTimeField())
    return Alert.objects.filter(pk__in=[pk for pk, _e in rows]).exclude(status=AlertStatus.RESOLVED).update(last_seen=now, ends_at=value)
