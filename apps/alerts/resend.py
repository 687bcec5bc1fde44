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

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, DateTimeField, Value, When

from .choices import AlertStatus
from .models import Alert

# The open row of each fingerprint (alerts_alert_open_fingerprint: tenant, fingerprint WHERE open).
OPEN_SQL = """SELECT id, fingerprint, severity, title, message, annotations, generator_url, starts_at, ends_at, silenced, last_seen
FROM alerts_alert WHERE tenant_id = %s AND fingerprint = ANY(%s) AND status <> 'resolved'"""
_FIELDS = ("pk", "fingerprint", "severity", "title", "message", "annotations", "generator_url", "starts_at", "ends_at",
           "silenced", "last_seen")


def open_rows_orm(tenant_id: int, fingerprints: list[str]) -> list[tuple]:
    """OPEN_SQL through the ORM (any database)."""
    return list(Alert.objects.filter(tenant_id=tenant_id, fingerprint__in=fingerprints).exclude(status=AlertStatus.RESOLVED)
                .values_list(*_FIELDS))


def split(firing: list[dict], open_rows: list[tuple], now: datetime) -> tuple[list[dict], list[tuple], int]:
    """(rows the upsert must write, (id, ends_at) of unchanged rows whose last_seen/ends_at are due,
    number of unchanged resends that write nothing)."""
    granularity = timedelta(seconds=settings.ALERTS_INGEST_LAST_SEEN_SECONDS)
    stale_before, ends_margin = now - granularity, now + granularity / 2
    by_fp = {row[1]: row for row in open_rows}
    parsed: dict = {}  # a batch's alerts share a few timestamps

    def at(text):
        if text is None:
            return None
        value = parsed.get(text)
        if value is None:
            value = parsed[text] = datetime.fromisoformat(text)
        return value

    write, bump, quiet = [], [], 0
    for row in firing:
        cur = by_fp.get(row["fp"])
        if cur is None or row["n"] != 1 or not _same(row, cur, at(row["starts_at"])):
            write.append(row)
            continue
        ends, old_ends = at(row["ends_at"]), cur[8]
        if (ends is None) != (old_ends is None) or (ends is not None and ends < old_ends):
            write.append(row)  # an end given, withdrawn or brought forward: a change
        elif cur[10] <= stale_before or (old_ends is not None and ends > old_ends and old_ends <= ends_margin):
            bump.append((cur[0], ends))
        else:
            quiet += 1
    return write, bump, quiet


def _same(row: dict, cur: tuple, starts: datetime) -> bool:
    """Everything the upsert writes besides last_seen/ends_at/updated_at equals the open row
    (labels are equal by fingerprint; one start, so no new occurrence)."""
    _pk, _fp, severity, title, message, annotations, generator_url, starts_at, _ends, silenced, _seen = cur
    return (starts == starts_at and severity == row["severity"] and title == row["title"] and message == row["message"]
            and silenced == row["silenced"] and generator_url == row["generator_url"]
            # jsonb arrives as text on Django's psycopg connections, as a dict through the ORM
            and (annotations if annotations.__class__ is dict else json.loads(annotations)) == row["annotations"])


def bump(rows: list[tuple], now: datetime) -> int:
    """last_seen = now and the resend's ends_at for open rows `(id, ends_at)`: ONE UPDATE (a CASE
    when the batch's ends differ). A row resolved meanwhile keeps its own end."""
    ends = {e for _pk, e in rows}
    if len(ends) == 1:
        value = Value(next(iter(ends)), output_field=DateTimeField())
    else:
        value = Case(*[When(pk=pk, then=Value(e, output_field=DateTimeField())) for pk, e in rows], output_field=DateTimeField())
    return Alert.objects.filter(pk__in=[pk for pk, _e in rows]).exclude(status=AlertStatus.RESOLVED).update(last_seen=now, ends_at=value)
