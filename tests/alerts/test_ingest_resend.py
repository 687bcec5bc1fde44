"""Resent alerts (issue 23 item 5): an unchanged resend of an open alert writes no row change
beyond a coarse last_seen/ends_at (ALERTS_INGEST_LAST_SEEN_SECONDS); a change, an end or a new
start is written at once; Redis down changes nothing of that; fingerprints stay per tenant.
"No row change" is checked twice: no INSERT/UPDATE of alerts_alert among the captured queries
(the ORM's), and on PostgreSQL the same tuple versions (xmin, ctid: the set-based upserts run on
psycopg's own cursor, which the capture does not see; any UPDATE makes a new version)."""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.alerts.choices import AlertStatus
from apps.alerts.ingest import alerts_ingest
from apps.alerts.models import Alert
from apps.alerts.services import ingest_token_create

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

INGEST = "/api/v1/alerts/ingest"
WEBHOOK = "/api/v1/alerts/ingest/alertmanager"
DEAD_REDIS = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}


@pytest.fixture(autouse=True, params=["set-based", "portable"])
def ingest_path(request, monkeypatch):
    """Both paths behind alerts_ingest (as tests/alerts/test_ingest.py)."""
    from apps.alerts import ingest

    if request.param == "set-based" and connection.vendor != "postgresql":
        pytest.skip("the set-based statements are PostgreSQL's")
    monkeypatch.setattr(ingest, "_set_based", lambda: request.param == "set-based")
    return request.param


@pytest.fixture
def tclient(api, world):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_token_create(actor=None, tenant=world.tenant('a'), name='am')[1]}")
    return api


def _iso(dt):
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _alert(instance="h1", summary="latency high", **extra):
    return {"labels": {"alertname": "HighLatency", "instance": instance, "severity": "critical"},
            "annotations": {"summary": summary, "description": "p99 > 500ms"}, **extra}


def _versions() -> dict:
    """Each alert row's tuple version on PostgreSQL (xmin, ctid), else its whole stored state."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT id, xmin::text, ctid::text FROM alerts_alert")
            return {pk: (xmin, ctid) for pk, xmin, ctid in cur.fetchall()}
    return {a["id"]: a for a in Alert.objects.values()}


def _alert_writes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE")) and "alerts_alert" in q["sql"]]


@contextmanager
def no_alert_row_changes():
    before = _versions()
    with CaptureQueriesContext(connection) as queries:
        yield
    assert _alert_writes(queries) == []
    assert _versions() == before


def test_resent_identical_alert_writes_no_row_change(tclient):
    body = [_alert("h1", startsAt=_iso(datetime.now(UTC) - timedelta(minutes=1))),
            _alert("h2", startsAt=_iso(datetime.now(UTC) - timedelta(minutes=2)))]
    assert tclient.post(INGEST, body, format="json").json()["created"] == 2
    stored = {a.pk: (a.last_seen, a.updated_at, a.occurrences, a.ends_at) for a in Alert.objects.all()}
    for _ in range(3):
        with no_alert_row_changes():
            r = tclient.post(INGEST, body, format="json")
        assert r.status_code == 200
        assert r.json() == {"received": 2, "created": 0, "updated": 2, "resolved": 0, "silenced": 0, "unchanged": 2}
    assert {a.pk: (a.last_seen, a.updated_at, a.occurrences, a.ends_at) for a in Alert.objects.all()} == stored


def test_resent_alert_with_changed_annotations_is_written_at_once(tclient):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    tclient.post(INGEST, [_alert(startsAt=starts)], format="json")
    with no_alert_row_changes():
        tclient.post(INGEST, [_alert(startsAt=starts)], format="json")
    r = tclient.post(INGEST, [_alert(summary="latency very high", startsAt=starts)], format="json")
    assert r.json()["unchanged"] == 0 and r.json()["updated"] == 1
    alert = Alert.objects.get()
    assert alert.annotations["summary"] == alert.title == "latency very high" and alert.occurrences == 1
    # a new start is a new occurrence, written at once too
    tclient.post(INGEST, [_alert(summary="latency very high", startsAt=_iso(datetime.now(UTC)))], format="json")
    assert Alert.objects.get().occurrences == 2


def test_resolved_resend_ends_the_alert_at_once(tclient):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=3))
    tclient.post(INGEST, [_alert("h1", startsAt=starts), _alert("h2", startsAt=starts)], format="json")
    with no_alert_row_changes():
        tclient.post(INGEST, [_alert("h1", startsAt=starts), _alert("h2", startsAt=starts)], format="json")
    ended = _iso(datetime.now(UTC) - timedelta(seconds=1))
    r = tclient.post(INGEST, [_alert("h1", startsAt=starts, endsAt=ended), _alert("h2", startsAt=starts)], format="json")
    assert r.json()["resolved"] == 1 and r.json()["unchanged"] == 1
    assert dict(Alert.objects.values_list("labels__instance", "status")) == {"h1": AlertStatus.RESOLVED, "h2": AlertStatus.FIRING}
    # Alertmanager's webhook: status resolved with its endsAt
    firing = {**_alert("h2", startsAt=starts), "status": "firing", "endsAt": "0001-01-01T00:00:00Z"}
    webhook = {"version": "4", "status": "firing", "receiver": "portal", "alerts": [firing]}
    assert tclient.post(WEBHOOK, webhook, format="json").json()["updated"] == 1  # ends_at withdrawn: a change
    with no_alert_row_changes():
        assert tclient.post(WEBHOOK, webhook, format="json").json()["unchanged"] == 1
    resolved = {**firing, "status": "resolved", "endsAt": ended}
    assert tclient.post(WEBHOOK, {**webhook, "status": "resolved", "alerts": [resolved]}, format="json").json()["resolved"] == 1
    assert not Alert.objects.exclude(status=AlertStatus.RESOLVED).exists()


def _ingest(tenant, body, at, **kw):
    return alerts_ingest(tenant_id=tenant.pk, alerts=body, now=at, **kw)


def test_last_seen_advances_at_the_documented_granularity(world, settings):
    settings.ALERTS_INGEST_LAST_SEEN_SECONDS = 60
    tenant, t0 = world.tenant("a"), datetime.now(UTC).replace(microsecond=0)
    body, timeout = [_alert(startsAt=_iso(t0 - timedelta(minutes=1)))], timedelta(minutes=5)
    _ingest(tenant, body, t0, default_ends_after=timeout)
    for s in (15, 30, 45, 59):
        with no_alert_row_changes():
            assert _ingest(tenant, body, t0 + timedelta(seconds=s), default_ends_after=timeout).unchanged == 1
    alert = Alert.objects.get()
    assert alert.last_seen == t0 and alert.ends_at == t0 + timeout
    at = t0 + timedelta(seconds=60)
    with CaptureQueriesContext(connection) as queries:
        assert _ingest(tenant, body, at, default_ends_after=timeout).unchanged == 1
    writes = _alert_writes(queries)
    assert len(writes) == 1  # one UPDATE, of last_seen and ends_at only
    assert '"last_seen"' in writes[0] and '"ends_at"' in writes[0] and '"title"' not in writes[0] and '"updated_at"' not in writes[0]
    alert.refresh_from_db()
    assert alert.last_seen == at and alert.ends_at == at + timeout and alert.occurrences == 1 and alert.updated_at < at
    with no_alert_row_changes():
        _ingest(tenant, body, at + timedelta(seconds=15), default_ends_after=timeout)
    assert Alert.objects.get().last_seen == at


def test_prometheus_ends_at_never_lapses_while_resent(world, settings):
    """Prometheus sends endsAt = now + 4 × its resend interval: the stored end is bumped while it
    lies G/2 or less ahead, so it never passes while the alert is resent (every 15 s here)."""
    settings.ALERTS_INGEST_LAST_SEEN_SECONDS = 60
    tenant, t0 = world.tenant("a"), datetime.now(UTC).replace(microsecond=0)
    starts, written = _iso(t0 - timedelta(minutes=1)), 0
    for s in range(0, 181, 15):
        at = t0 + timedelta(seconds=s)
        before = _versions()
        r = _ingest(tenant, [_alert(startsAt=starts, endsAt=_iso(at + timedelta(seconds=60)))], at)
        written += _versions() != before
        alert = Alert.objects.get()
        assert alert.status == AlertStatus.FIRING and alert.ends_at >= at + timedelta(seconds=30)
        assert r.created + r.unchanged == 1
    assert written == 1 + 6  # the first report, then every second resend (2 of 4 per minute)


def test_redis_down_mid_stream_loses_no_change(tclient, settings):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    body = [_alert("h1", startsAt=starts), _alert("h2", startsAt=starts)]
    tclient.post(INGEST, body, format="json")
    healthy = settings.CACHES
    # the deployment's Redis cache, down (also in the SQLite run, whose default cache is files)
    settings.CACHES = {"default": {"BACKEND": "apps.core.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": DEAD_REDIS}}
    with no_alert_row_changes():
        assert tclient.post(INGEST, body, format="json").json()["unchanged"] == 2
    r = tclient.post(INGEST, [_alert("h1", summary="changed", startsAt=starts),
                              _alert("h2", startsAt=starts, endsAt=_iso(datetime.now(UTC)))], format="json")
    assert r.status_code == 200 and r.json()["unchanged"] == 0 and r.json()["resolved"] == 1
    settings.CACHES = healthy  # back, with whatever it held before
    assert Alert.objects.get(labels__instance="h1").title == "changed"
    assert Alert.objects.get(labels__instance="h2").status == AlertStatus.RESOLVED
    r = tclient.post(INGEST, body, format="json")  # h2 fires again: a new period, a new row
    assert r.json()["created"] == 1 and r.json()["updated"] == 1
    assert Alert.objects.filter(labels__instance="h2").count() == 2


def test_same_labels_from_two_tenants_are_two_alerts(world, api):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    clients = {}
    for t in ("a", "b"):
        raw = ingest_token_create(actor=None, tenant=world.tenant(t), name=f"am-{t}")[1]
        clients[t] = type(api)()
        clients[t].credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert clients["a"].post(INGEST, [_alert(startsAt=starts)], format="json").json()["created"] == 1
    assert clients["b"].post(INGEST, [_alert(startsAt=starts)], format="json").json()["created"] == 1
    a, b = Alert.objects.get(tenant=world.tenant("a")), Alert.objects.get(tenant=world.tenant("b"))
    assert a.pk != b.pk and a.fingerprint != b.fingerprint
    with no_alert_row_changes():
        assert clients["a"].post(INGEST, [_alert(startsAt=starts)], format="json").json()["unchanged"] == 1
    # b's change is b's alone
    clients["b"].post(INGEST, [_alert(summary="b only", startsAt=starts)], format="json")
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.title == "latency high" and b.title == "b only"


def test_resend_with_its_labels_in_another_order_is_the_same_unchanged_alert(tclient):
    """The fingerprint memo is keyed by the label pairs as sent: another order is another key,
    the same fingerprint, so the same open alert and no write."""
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    first = _alert(startsAt=starts)
    assert tclient.post(INGEST, [first], format="json").json()["created"] == 1
    reordered = {**first, "labels": dict(reversed(list(first["labels"].items())))}
    with no_alert_row_changes():
        assert tclient.post(INGEST, [reordered], format="json").json()["unchanged"] == 1
    assert Alert.objects.count() == 1


def test_a_full_fingerprint_memo_changes_no_outcome(tclient, monkeypatch):
    from apps.alerts import ingest

    monkeypatch.setattr(ingest, "_FINGERPRINTS", {})  # SQLite reuses ids: earlier tests' keys would hit
    monkeypatch.setattr(ingest, "_FINGERPRINTS_MAX", 1)  # cleared at every new label set
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    body = [_alert("h1", startsAt=starts), _alert("h2", startsAt=starts), _alert("h3", startsAt=starts)]
    assert tclient.post(INGEST, body, format="json").json()["created"] == 3
    with no_alert_row_changes():
        assert tclient.post(INGEST, body, format="json").json()["unchanged"] == 3
    changed = [body[0], _alert("h2", summary="other", startsAt=starts), body[2]]
    assert tclient.post(INGEST, changed, format="json").json() == {
        "received": 3, "created": 0, "updated": 3, "resolved": 0, "silenced": 0, "unchanged": 2}
    assert Alert.objects.get(labels__instance="h2").title == "other" and len(ingest._FINGERPRINTS) <= 1
