import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import resolve, reverse

from apps.alerts.choices import AlertStatus, AlertType, Severity
from apps.alerts.models import Alert
from apps.alerts.services import ingest_token_create, ingest_token_revoke
from apps.core.models import Event
from tests.factories.alerts import EscalationPolicyFactory, SilenceFactory

# also run on SQLite (`make test` runs the `sqlite` marker again on the embedded default)
pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

INGEST = "/api/v1/alerts/ingest"
WEBHOOK = "/api/v1/alerts/ingest/alertmanager"


def _iso(dt):
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True, params=["set-based", "portable"])
def ingest_path(request, monkeypatch):
    """Every test here runs on both paths behind alerts_ingest: PostgreSQL's set-based statements
    and the portable ORM path (the only one on SQLite)."""
    from django.db import connection

    from apps.alerts import ingest

    if request.param == "set-based" and connection.vendor != "postgresql":
        pytest.skip("the set-based statements are PostgreSQL's")
    monkeypatch.setattr(ingest, "_set_based", lambda: request.param == "set-based")
    return request.param


@pytest.fixture
def token(world):
    return ingest_token_create(actor=None, tenant=world.tenant("a"), name="am")[1]


@pytest.fixture
def tclient(api, token):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def _alert(name="HighLatency", instance="h1", **extra):
    return {"labels": {"alertname": name, "instance": instance, "severity": "critical"},
            "annotations": {"summary": f"{name} on {instance}", "description": "p99 > 500ms"}, **extra}


def test_urls_are_as_documented():
    # the documented form answers; reverse() gives the canonical slash form (apps/core/api/routing.py)
    assert reverse("alert-ingest") == INGEST + "/" and reverse("alert-ingest-alertmanager") == WEBHOOK + "/"
    assert resolve(INGEST).url_name == "alert-ingest" and resolve(WEBHOOK).url_name == "alert-ingest-alertmanager"


def test_bulk_ingest_creates_and_same_payload_twice_is_idempotent(tclient, world):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=1))
    body = [_alert(instance="h1", startsAt=starts), _alert(instance="h2", startsAt=starts)]
    first = tclient.post(INGEST, body, format="json")
    assert first.status_code == 200, first.content
    assert first.json() == {"received": 2, "created": 2, "updated": 0, "resolved": 0, "silenced": 0, "unchanged": 0}
    before = list(Alert.objects.order_by("pk").values("pk", "occurrences", "status", "fingerprint"))
    again = tclient.post(INGEST, body, format="json")
    assert again.json()["updated"] == 2
    assert list(Alert.objects.order_by("pk").values("pk", "occurrences", "status", "fingerprint")) == before
    alert = Alert.objects.get(labels__instance="h1")
    assert alert.tenant == world.tenant("a") and alert.alert_type == AlertType.EXTERNAL and alert.severity == Severity.CRITICAL
    assert alert.title == "HighLatency on h1" and alert.message == "p99 > 500ms"
    assert alert.ends_at is not None  # resolve timeout armed


def test_new_start_is_a_new_occurrence_and_duplicates_in_a_batch_merge(tclient):
    t1 = _iso(datetime.now(UTC) - timedelta(minutes=2))
    t2 = _iso(datetime.now(UTC) - timedelta(minutes=1))
    r = tclient.post(INGEST, [_alert(startsAt=t1), _alert(startsAt=t2)], format="json")
    assert r.json()["created"] == 1
    assert Alert.objects.get().occurrences == 2
    tclient.post(INGEST, [_alert()], format="json")  # no startsAt: now, a new occurrence
    assert Alert.objects.get().occurrences == 3


def test_endsat_in_the_past_resolves_and_retry_changes_nothing(tclient):
    tclient.post(INGEST, [_alert()], format="json")
    ended = [_alert(startsAt=_iso(datetime.now(UTC) - timedelta(minutes=5)), endsAt=_iso(datetime.now(UTC) - timedelta(seconds=5)))]
    assert tclient.post(INGEST, ended, format="json").json()["resolved"] == 1
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert tclient.post(INGEST, ended, format="json").json()["resolved"] == 0
    assert Alert.objects.count() == 1
    tclient.post(INGEST, [_alert()], format="json")  # fires again: a new firing period row
    assert list(Alert.objects.order_by("pk").values_list("status", flat=True)) == ["resolved", "firing"]


def test_a_resolved_report_of_a_later_period_is_recorded_once(tclient):
    now = datetime.now(UTC)
    first = [_alert(startsAt=_iso(now - timedelta(hours=2)), endsAt=_iso(now - timedelta(hours=1)))]
    later = [_alert(startsAt=_iso(now - timedelta(minutes=30)), endsAt=_iso(now - timedelta(minutes=10)))]
    assert tclient.post(INGEST, first, format="json").json()["resolved"] == 1
    # a period that starts after the recorded one ended: its own row, once
    assert tclient.post(INGEST, later, format="json").json()["resolved"] == 1
    assert tclient.post(INGEST, later, format="json").json()["resolved"] == 0
    assert tclient.post(INGEST, first, format="json").json()["resolved"] == 0  # overlaps a recorded period
    assert sorted(Alert.objects.values_list("resolved_at", flat=True)) == [now - timedelta(hours=1), now - timedelta(minutes=10)]


def test_silenced_ingested_alert_is_stored_without_notify(tclient, world):
    SilenceFactory(tenant=world.tenant("a"), matchers=[{"name": "instance", "op": "=~", "value": "h[0-9]"}])
    r = tclient.post(INGEST, [_alert(instance="h1"), _alert(instance="web")], format="json")
    assert r.json()["silenced"] == 1
    assert Alert.objects.get(labels__instance="h1").silenced
    event = Event.objects.get(name="alert.fired")
    assert event.payload["count"] == 1 and event.payload["notify"]["roles"]


def test_one_grouped_event_per_batch_and_escalation_armed(tclient, world):
    EscalationPolicyFactory(tenant=world.tenant("a"), steps=[{"wait_minutes": 3, "roles": ["admin"]}])
    tclient.post(INGEST, [_alert(instance=f"h{i}") for i in range(10)], format="json")
    assert Event.objects.filter(name="alert.fired").count() == 1
    assert Alert.objects.filter(next_escalation_at__isnull=False).count() == 10


def test_inhibited_alerts_are_stored_without_announcement(tclient, world):
    from tests.factories.alerts import InhibitRuleFactory

    InhibitRuleFactory(tenant=world.tenant("a"), source_matchers=[{"name": "alertname", "op": "=", "value": "NodeDown"}],
                       target_matchers=[{"name": "alertname", "op": "=", "value": "HighLatency"}], equal=["instance"])
    tclient.post(INGEST, [_alert(name="NodeDown", instance="h3")], format="json")
    Event.objects.all().delete()
    r = tclient.post(INGEST, [_alert(instance="h3"), _alert(instance="h4")], format="json")
    assert r.json()["created"] == 2
    event = Event.objects.get(name="alert.fired")
    assert event.payload["alert_ids"] == [Alert.objects.get(labels__instance="h4", labels__alertname="HighLatency").pk]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"labels": {}}, "alerts"),
        ([{"labels": {}}], "labels"),
        ([{"labels": {"a": 1}}], "strings"),
        ([{"labels": {"a": "b"}, "startsAt": "yesterday"}], "RFC 3339"),
        ([{"labels": {"a": "b"}, "startsAt": "2024-01-01T00:00:00"}], "time zone"),
    ],
)
def test_bad_payloads_are_400_with_a_message(tclient, body, message):
    r = tclient.post(INGEST, body, format="json")
    assert r.status_code == 400 and message in r.json()["detail"], r.content
    assert not Alert.objects.exists()


def test_invalid_json_is_400(tclient):
    r = tclient.generic("POST", INGEST, "{not json", content_type="application/json")
    assert r.status_code == 400


def test_revoked_or_unknown_token_is_401(api, world):
    token, raw = ingest_token_create(actor=None, tenant=world.tenant("a"), name="x")
    ingest_token_revoke(token, actor=None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.post(INGEST, [_alert()], format="json").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer opa_dead_beef")
    assert api.post(INGEST, [_alert()], format="json").status_code == 401


def test_one_token_check_for_every_route(tclient, token, world, settings):
    """The API view checks an ingestion token as the token route does (ingest_config: the
    tenant's cached live token hashes): no token row is read per request once this process has
    seen the token, and a revocation still takes effect on the next request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("without Redis nothing is cached: every request reads the database")
    assert tclient.post(INGEST, [_alert(instance="warm")], format="json").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert tclient.post(INGEST, [_alert(instance="h1")], format="json").status_code == 200
    assert not [q["sql"] for q in queries if "alerts_ingesttoken" in q["sql"]]
    from apps.alerts.models import IngestToken

    ingest_token_revoke(IngestToken.objects.get(tenant=world.tenant("a")), actor=None)
    assert tclient.post(INGEST, [_alert(instance="h2")], format="json").status_code == 401


def test_token_is_stored_hashed(world):
    token, raw = ingest_token_create(actor=None, tenant=world.tenant("a"), name="x")
    assert raw not in token.token_hash and len(token.token_hash) == 64


def test_jwt_user_ingests_into_own_tenant_viewer_cannot(api, world):
    r = api.as_user(world.user("b", "operator")).post(INGEST, [_alert()], format="json")
    assert r.status_code == 200 and Alert.objects.get().tenant == world.tenant("b")
    assert api.as_user(world.user("b", "viewer")).post(INGEST, [_alert()], format="json").status_code == 403


def test_rate_limit_answers_429_with_retry_after(tclient, settings):
    settings.ALERTS_INGEST_RATE_PER_MINUTE = 3
    assert tclient.post(INGEST, [_alert(instance="1"), _alert(instance="2")], format="json").status_code == 200
    r = tclient.post(INGEST, [_alert(instance="3"), _alert(instance="4")], format="json")
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1


def _webhook(status, alerts, version="4"):
    return {"version": version, "groupKey": "{}:{alertname=\"X\"}", "truncatedAlerts": 0, "status": status, "receiver": "portal",
            "groupLabels": {"alertname": "X"}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "alerts": alerts}


def test_alertmanager_webhook_fire_then_resolve(tclient):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=3))
    firing = {**_alert(), "status": "firing", "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "abc"}
    assert tclient.post(WEBHOOK, _webhook("firing", [firing]), format="json").json()["created"] == 1
    alert = Alert.objects.get()
    assert alert.ends_at is None and alert.generator_url == "http://prom/graph"
    assert tclient.post(WEBHOOK, _webhook("firing", [firing]), format="json").json()["updated"] == 1
    resolved = {**firing, "status": "resolved", "endsAt": _iso(datetime.now(UTC) - timedelta(seconds=1))}
    assert tclient.post(WEBHOOK, _webhook("resolved", [resolved]), format="json").json()["resolved"] == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.occurrences == 1


def test_alertmanager_webhook_wrong_version_is_400(tclient):
    r = tclient.post(WEBHOOK, _webhook("firing", [], version="3"), format="json")
    assert r.status_code == 400 and "version" in r.json()["detail"]


def _snapshot(tenant):
    """The tenant's alerts and events as data independent of primary keys."""
    alerts = list(Alert.objects.filter(tenant=tenant).order_by("fingerprint", "first_seen"))
    position = {a.pk: i for i, a in enumerate(alerts)}
    fields = ("status", "severity", "title", "message", "labels", "annotations", "generator_url", "fingerprint", "occurrences",
              "first_seen", "last_seen", "starts_at", "ends_at", "resolved_at", "silenced", "escalation_policy_id",
              "next_escalation_at", "escalation_step", "alert_type", "source", "metadata", "created_at")
    rows = [{f: getattr(a, f) for f in fields} for a in alerts]

    def ids(payload: dict) -> dict:
        out = {**payload, "id": position.get(payload.get("id"), payload.get("id"))}
        for key in ("alert_ids", "ticket_alert_ids"):
            if key in out:
                out[key] = [position[pk] for pk in out[key]]
        for key in ("url", "action_url"):
            if key in out:
                out[key] = re.sub(r"/alert/(\d+)/", lambda m: f"/alert/#{position[int(m.group(1))]}/", out[key])
        if "notify" in out:
            out["notify"] = ids(out["notify"])
        return out

    events = sorted((e.name, e.actor_id, json.dumps(ids(e.payload), sort_keys=True)) for e in Event.objects.filter(tenant=tenant))
    return rows, events


def test_both_paths_write_the_same_rows_and_events(world, monkeypatch, ingest_path):
    """One sequence of batches — new, repeated, muted, escalated, inhibited, resolved, refired —
    through each path from a clean tenant: the same alerts, field for field, and the same events."""
    from django.db import connection

    from apps.alerts import ingest
    from tests.factories.alerts import AlertSubscriptionFactory, InhibitRuleFactory

    if connection.vendor != "postgresql" or ingest_path != "set-based":
        pytest.skip("compares both paths once, on PostgreSQL")
    tenant = world.tenant("a")
    EscalationPolicyFactory(tenant=tenant, steps=[{"wait_minutes": 3, "roles": ["admin"]}])
    SilenceFactory(tenant=tenant, matchers=[{"name": "instance", "op": "=", "value": "muted"}])
    AlertSubscriptionFactory(tenant=tenant, user=world.user("a", "operator"), alert_type="external", min_severity=Severity.CRITICAL)
    InhibitRuleFactory(tenant=tenant, source_matchers=[{"name": "alertname", "op": "=", "value": "NodeDown"}],
                       target_matchers=[{"name": "alertname", "op": "=", "value": "HighLatency"}], equal=["instance"])
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)  # inside the silence
    at = [t0 + timedelta(minutes=m) for m in range(6)]
    batches = [
        (at[0], [_alert(instance="h1", startsAt=_iso(at[0])), _alert(instance="muted"), _alert(name="Disk", instance="h2"),
                 {"labels": {"instance": "nameless", "severity": "info"}}]),
        (at[1], [_alert(instance="h1", startsAt=_iso(at[0])), _alert(instance="h1", startsAt=_iso(at[1])),
                 _alert(name="NodeDown", instance="h3")]),
        (at[2], [_alert(instance="h3"), _alert(name="Disk", instance="h2", startsAt=_iso(at[0]), endsAt=_iso(at[1]))]),
        (at[3], [_alert(name="Old", instance="h9", startsAt=_iso(at[0]), endsAt=_iso(at[1])), _alert(name="Disk", instance="h2")]),
        (at[4], [_alert(name="Old", instance="h9", startsAt=_iso(at[0]), endsAt=_iso(at[1])), _alert(instance="h1", startsAt=_iso(at[1]), endsAt=_iso(at[3]))]),
        (at[5], [_alert(instance="h1", startsAt=_iso(at[5]))]),
    ]
    snapshots, results = [], []
    actor = world.user("a", "admin")
    for set_based in (True, False):
        Alert.objects.filter(tenant=tenant).delete()
        Event.objects.filter(tenant=tenant).delete()
        monkeypatch.setattr(ingest, "_set_based", lambda set_based=set_based: set_based)
        results.append([ingest.alerts_ingest(tenant_id=tenant.pk, alerts=alerts, now=now, actor=actor,
                                             default_ends_after=timedelta(minutes=5)).as_dict() for now, alerts in batches])
        snapshots.append(_snapshot(tenant))
    assert results[0] == results[1]
    assert snapshots[0][0] == snapshots[1][0]
    assert snapshots[0][1] == snapshots[1][1]
    assert len(snapshots[0][1]) >= 4 and any(r["silenced"] for r in results[0]) and any(r["resolved"] for r in results[0])


def test_portal_api_token_ingests_with_its_capped_role(api, world):
    """Issue 19.1: a portal API token (opp_) works on the ingest routes as its owner, role capped."""
    assert api.as_token(world.user("b", "operator")).post(INGEST, [_alert()], format="json").status_code == 200
    assert Alert.objects.get().tenant == world.tenant("b")
    assert api.as_token(world.user("b", "owner"), role="viewer").post(INGEST, [_alert()], format="json").status_code == 403
