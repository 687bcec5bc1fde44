"""The probes of one tenant's open alert by fingerprint keep their index under tenant skew.

A small tenant beside a large one: the statistics were gathered while only the large tenant had
rows, so the planner thinks the small one has none, and every index that leads with tenant_id
looks as cheap as the open-fingerprint one. Before the fix the resend read (resend.OPEN_SQL)
then walked alerts_type_sev_idx and filtered each of its probes by fingerprint: every probe read
all the small tenant's rows. The probes must reach their row through an index on fingerprint.
"""

import json

import pytest
from django.db import connection

from apps.alerts.choices import AlertStatus
from apps.alerts.resend import OPEN_SQL

pytestmark = pytest.mark.django_db  # PostgreSQL only (not marked sqlite)

BIG, SMALL = 30_000, 3_000
OPEN_INDEX = "alerts_alert_open_fingerprint"


def _insert(tenant_id: int, n: int, prefix: str, status: str = "firing") -> None:
    """n alerts of one tenant with one alert type and severity (as an ingesting source writes)."""
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO alerts_alert (tenant_id, created_at, updated_at, alert_type, severity, status, source, title,
                   message, object_id, resource_type, resource_id, labels, annotations, generator_url, fingerprint,
                   occurrences, first_seen, last_seen, silenced, escalation_step, escalation_round, metadata)
               SELECT %s, now(), now(), 'external', 'critical', %s, 'ingest', 'HighLatency', '', '', '', '',
                   '{}'::jsonb, '{}'::jsonb, '', %s || g, 1, now(), now(), false, 0, 0, '{}'::jsonb
               FROM generate_series(1, %s) g""",
            [tenant_id, status, prefix, n],
        )


@pytest.fixture
def skewed(world):
    big, small = world.tenant("a"), world.tenant("b")
    _insert(big.pk, BIG, "big-")
    with connection.cursor() as cur:
        cur.execute("ANALYZE alerts_alert")
    _insert(small.pk, SMALL, "small-")
    _insert(small.pk, SMALL, "small-", status=AlertStatus.RESOLVED)  # history of the same label sets
    return small


def _scans(plan: dict) -> list[dict]:
    """Every node of the plan that reads alerts_alert."""
    found = [plan] if plan.get("Relation Name") == "alerts_alert" and plan["Node Type"] != "ModifyTable" else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _explain(sql: str, params) -> list[dict]:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        row = cur.fetchone()[0]
    return _scans((json.loads(row) if isinstance(row, str) else row)[0]["Plan"])


def _assert_probe(scans: list[dict]) -> None:
    assert scans, "no scan of alerts_alert"
    for scan in scans:
        assert scan.get("Index Name") == OPEN_INDEX, scan
        assert scan.get("Rows Removed by Filter", 0) <= 1, scan


def test_resend_read_probes_the_open_index(skewed):
    batch = json.dumps([{"fp": f"small-{i}", "ann": {}} for i in range(1, 101)])
    _assert_probe(_explain(OPEN_SQL, [batch, skewed.pk]))


def test_alert_raise_probes_the_open_index(skewed):
    """alert_raise's read of the open row (an event, a rule or a check raising an alert)."""
    from django.test.utils import CaptureQueriesContext

    from apps.alerts.services import alert_raise

    with CaptureQueriesContext(connection) as ctx:
        alert, _ = alert_raise(tenant=skewed.pk, alert_type="custom", severity="critical", title="again", fingerprint="small-7")
    assert alert.occurrences == 2
    probe = next(q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT') and "FOR UPDATE" in q["sql"])
    _assert_probe(_explain(probe, None))


def test_resolve_statement_probes_fingerprint_indexes(skewed):
    """The set-based resolve (ingest._RESOLVED_SQL): the open rows it closes and the resolved rows
    it looks for both through their fingerprint-led index."""
    from datetime import UTC, datetime

    from apps.alerts.choices import AlertSource, AlertType
    from apps.alerts.ingest import _RESOLVED_SQL, _records

    now = datetime.now(UTC)
    rows = [{"fp": f"small-{i}", "severity": "critical", "title": "HighLatency", "message": "", "labels": {"alertname": "x"},
             "annotations": {}, "generator_url": "", "starts_at": now.isoformat(), "ends_at": now.isoformat(), "n": 1,
             "silenced": False} for i in range(1, 101)]
    rows += [{**row, "fp": f"gone-{i}"} for i, row in enumerate(rows[:20])]  # no open row: the resolved probe decides
    params = {"tenant": skewed.pk, "now": now, "type": AlertType.EXTERNAL, "source": AlertSource.INGEST, "rows": _records(rows)}
    scans = _explain(_RESOLVED_SQL, params)
    assert {scan.get("Index Name") for scan in scans} == {OPEN_INDEX, "alerts_resolved_fp_idx"}, scans
    for scan in scans:
        assert scan.get("Rows Removed by Filter", 0) <= 1, scan
