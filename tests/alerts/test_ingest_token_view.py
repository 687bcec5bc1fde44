"""Token-authenticated ingestion, served by the URLconf's plain view (apps/alerts/api/views.py
`token_ingest_view`) through the whole middleware stack, and the per-tenant configuration kept
per process behind it (apps/alerts/ingest_config.py)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts import ingest_config
from apps.alerts.choices import AlertStatus, Severity
from apps.alerts.ingest import _CANONICAL, normalise
from apps.alerts.matching import canonical_labels, labels_fingerprint
from apps.alerts.models import Alert, Silence
from apps.alerts.services import ingest_token_create, ingest_token_revoke, silence_create
from apps.core.models import Event
from tests.factories.alerts import AlertSubscriptionFactory, EscalationPolicyFactory, InhibitRuleFactory, SilenceFactory
from tests.factories.maintenance import MaintenanceWindowFactory

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/alerts/ingest"
WEBHOOK = "/api/v1/alerts/ingest/alertmanager"


def wsgi_post(path: str, body, *, token: str | None = None, auth: str | None = None, host: str = "testserver"):
    """POST through Django's handler, the middleware and the URLconf, as a client would."""
    from django.test import Client

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = auth or (f"Bearer {token}" if token else None)
    extra = {"HTTP_AUTHORIZATION": auth} if auth else {}
    response = Client(HTTP_HOST=host).post(path, data, content_type="application/json", **extra)
    response.body = response.content
    return response


def _iso(dt):
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _alert(name="HighLatency", instance="h1", severity="critical", **extra):
    return {"labels": {"alertname": name, "instance": instance, "severity": severity},
            "annotations": {"summary": f"{name} on {instance}", "description": "p99 > 500ms"}, **extra}


@pytest.fixture
def token(world):
    return ingest_token_create(actor=None, tenant=world.tenant("a"), name="am")[1]


def test_token_request_is_served_by_the_plain_view_with_security_headers(token, world, api):
    r = wsgi_post(INGEST, [_alert(instance="h1"), _alert(instance="h2")], token=token)
    assert r.status_code == 200, r.body
    assert r.json() == {"received": 2, "created": 2, "updated": 0, "resolved": 0, "silenced": 0, "unchanged": 0}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in r.headers or "content-security-policy-report-only" in r.headers
    assert "set-cookie" not in r.headers and "Accept" not in r.headers.get("vary", "")  # no session, no DRF negotiation
    assert set(Alert.objects.values_list("tenant_id", flat=True)) == {world.tenant("a").pk}
    # the same batch again through DRF (test client) answers the same way
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.post(INGEST, [_alert(instance="h1"), _alert(instance="h2")], format="json").json() == {
        "received": 2, "created": 0, "updated": 2, "resolved": 0, "silenced": 0, "unchanged": 0}


def test_webhook_with_a_token_fires_then_resolves(token):
    starts = _iso(datetime.now(UTC) - timedelta(minutes=3))
    firing = {**_alert(), "status": "firing", "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc"}
    body = {"version": "4", "status": "firing", "receiver": "portal", "alerts": [firing]}
    assert wsgi_post(WEBHOOK, body, token=token).json()["created"] == 1
    assert Alert.objects.get().ends_at is None
    resolved = {**firing, "status": "resolved", "endsAt": _iso(datetime.now(UTC) - timedelta(seconds=1))}
    assert wsgi_post(WEBHOOK, {**body, "status": "resolved", "alerts": [resolved]}, token=token).json()["resolved"] == 1
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert Event.objects.get(name="alert.resolved").payload["alert_ids"] == [Alert.objects.get().pk]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (INGEST, b"{not json", "JSON parse error"),
        (INGEST, {"labels": {}}, "Send a JSON list"),
        (INGEST, [{"labels": {"a": 1}}], "strings"),
        (INGEST, [{"labels": {"a": ["b"]}}], "strings"),  # unhashable: not a key of the label-set memo
        (INGEST, [{"labels": {"a": "b"}}, {"labels": {"a": True}}], "strings"),  # beside a valid set
        (INGEST, [{"labels": ["a", "b"]}], "non-empty object"),
        (INGEST, [{"labels": {"a": "b"}, "startsAt": "2024-01-01T00:00:00"}], "time zone"),
        (WEBHOOK, {"version": "3", "alerts": []}, "version"),
        (WEBHOOK, [], "webhook payload"),
    ],
)
def test_bad_input_with_a_token_is_a_json_400(token, path, body, message):
    r = wsgi_post(path, body, token=token)
    assert r.status_code == 400 and message in r.json()["detail"], r.body
    assert "errors" in r.json() and not Alert.objects.exists()
    assert r.headers["content-type"] == "application/json"  # found by the fuzzer: was text/html


def test_unknown_tokens_are_401(token):
    assert wsgi_post(INGEST, [_alert()], token=token).status_code == 200  # snapshot cached in this process
    assert wsgi_post(INGEST, [_alert()], token=token[:-4] + "AAAA").status_code == 401  # right prefix, wrong secret
    unknown = wsgi_post(INGEST, [_alert()], token="opa_deadbeef_nothing")
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    assert "revoked" in unknown.json()["detail"]
    assert wsgi_post(INGEST, [_alert()], auth="Bearer opa_nounderscore").status_code == 401
    assert Alert.objects.count() == 1


def test_revoking_a_cached_token_takes_effect_at_once(world, token):
    from apps.alerts.models import IngestToken

    assert wsgi_post(INGEST, [_alert()], token=token).status_code == 200  # snapshot cached in this process
    ingest_token_revoke(IngestToken.objects.get(tenant=world.tenant("a")), actor=None)
    assert wsgi_post(INGEST, [_alert()], token=token).status_code == 401


def test_token_view_keeps_host_validation(token):
    r = wsgi_post(INGEST, [_alert()], token=token, host="evil.example.com")
    assert r.status_code == 400 and not Alert.objects.exists()


def test_jwt_on_the_same_url_is_served_by_drf(world):
    from rest_framework_simplejwt.tokens import RefreshToken

    jwt = RefreshToken.for_user(world.user("b", "operator")).access_token
    r = wsgi_post(INGEST, [_alert()], auth=f"Bearer {jwt}")
    assert r.status_code == 200 and Alert.objects.get().tenant == world.tenant("b")
    assert "vary" in r.headers  # DRF answered


def test_rate_limit_with_a_token_is_429_with_retry_after(token, settings):
    settings.ALERTS_INGEST_RATE_PER_MINUTE = 3
    assert wsgi_post(INGEST, [_alert(instance="1"), _alert(instance="2")], token=token).status_code == 200
    r = wsgi_post(INGEST, [_alert(instance="3"), _alert(instance="4")], token=token)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "retry" in r.json()["detail"]
    assert Alert.objects.count() == 2


def test_configuration_changes_reach_the_cached_snapshot(token, world):
    tenant = world.tenant("a")
    assert wsgi_post(INGEST, [_alert(instance="web-1")], token=token).json()["silenced"] == 0  # snapshot cached
    silence_create(actor=None, tenant=tenant, matchers=[{"name": "instance", "op": "=~", "value": "web-.*"}],
                   ends_at=datetime.now(UTC) + timedelta(hours=1))
    assert wsgi_post(INGEST, [_alert(instance="web-2")], token=token).json()["silenced"] == 1
    EscalationPolicyFactory(tenant=tenant, steps=[{"wait_minutes": 7, "roles": ["admin"]}])
    sub = AlertSubscriptionFactory(tenant=tenant, user=world.user("a", "operator"), alert_type="external", channels=["email"])
    wsgi_post(INGEST, [_alert(instance="db-1")], token=token)
    alert = Alert.objects.get(labels__instance="db-1")
    assert alert.escalation_policy is not None and alert.next_escalation_at is not None
    notify = Event.objects.filter(name="alert.fired").latest("created_at").payload["notify"]
    assert notify["user_ids"] == [sub.user_id] and notify["channels"] == ["email"]
    MaintenanceWindowFactory(tenant=tenant)  # tenant-wide, active now
    assert wsgi_post(INGEST, [_alert(instance="db-2")], token=token).json()["silenced"] == 1


def test_a_snapshot_is_trusted_only_under_its_version(world):
    tenant_id = world.tenant("a").pk
    first = ingest_config.tenant_config(tenant_id)
    assert ingest_config.tenant_config(tenant_id) is first  # same version: no queries
    SilenceFactory(tenant=world.tenant("a"))  # post_save bumps the version
    assert ingest_config.tenant_config(tenant_id) is not first
    assert ingest_config.tenant_config(tenant_id, version=None) is not ingest_config.tenant_config(tenant_id, version=None)


def test_without_redis_ingestion_reads_the_database_every_time(token, world, settings):
    assert wsgi_post(INGEST, [_alert(instance="web-1")], token=token).status_code == 200  # snapshot cached
    settings.CACHES = {"default": {"BACKEND": "apps.core.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    # a silence written by another process whose version bump was lost (no signal here either)
    Silence.objects.bulk_create([SilenceFactory.build(tenant=world.tenant("a"), matchers=[{"name": "instance", "op": "=", "value": "web-2"}])])
    r = wsgi_post(INGEST, [_alert(instance="web-2")], token=token)
    assert r.status_code == 200 and r.json()["silenced"] == 1


def test_inhibited_alerts_in_the_batch_lose_announcement_and_escalation(token, world):
    tenant = world.tenant("a")
    InhibitRuleFactory(tenant=tenant)  # critical inhibits warning with the same instance
    EscalationPolicyFactory(tenant=tenant, min_severity=Severity.INFO)
    r = wsgi_post(INGEST, [_alert(name="NodeDown", instance="h1", severity="critical"),
                           _alert(name="HighLatency", instance="h1", severity="warning"),
                           _alert(name="HighLatency", instance="h2", severity="warning")], token=token)
    assert r.json()["created"] == 3
    muted = Alert.objects.get(labels__alertname="HighLatency", labels__instance="h1")
    assert muted.escalation_policy is None and muted.next_escalation_at is None
    payload = Event.objects.get(name="alert.fired").payload
    assert muted.pk not in payload["alert_ids"] and payload["count"] == 2
    assert Alert.objects.get(labels__instance="h2").escalation_policy is not None


def test_fingerprints_and_stored_labels_match_the_shared_helpers():
    samples = [{"alertname": "x"}, {"b": "2", "a": "1", "é": "ü", "emoji": "🔥", "q": 'say "hi"\n'}, {"z": "", "": "empty"}]
    for labels in samples:
        assert _CANONICAL(labels) == canonical_labels(labels)
    now = datetime.now(UTC)
    for _ in range(2):  # computed, then from the per-process memo
        firing, _ = normalise([{"labels": labels} for labels in samples], tenant_id=42, now=now, default_ends_after=None)
        assert [row["fp"] for row in firing] == [labels_fingerprint(42, labels) for labels in samples]
    # the memo's key is the pairs as sent: another order is the same label set, another tenant is not
    reordered = [dict(reversed(list(labels.items()))) for labels in samples]
    firing, _ = normalise([{"labels": labels} for labels in reordered], tenant_id=42, now=now, default_ends_after=None)
    assert [row["fp"] for row in firing] == [labels_fingerprint(42, labels) for labels in samples]
    firing, _ = normalise([{"labels": labels} for labels in samples], tenant_id=43, now=now, default_ends_after=None)
    assert [row["fp"] for row in firing] == [labels_fingerprint(43, labels) for labels in samples] != [
        labels_fingerprint(42, labels) for labels in samples]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 65 + b"]" * 65, "nested too deeply"),  # over MAX_DEPTH: the walk after the parse
        (b'[{"labels": {"a": "b"}, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}]", "nested too deeply"),  # over orjson's own limit
        (b'[{"labels": {"a": "b"}, "x": NaN}]', "JSON parse error"),
        (b'[{"labels": {"a": "\\ud800"}}]', "JSON parse error"),  # a lone surrogate PostgreSQL could not store
        (b'[{"labels": {"a": "b"}, "startsAt": 1e999}]', "JSON parse error"),
        (b"\xff[]", "JSON parse error"),
        (b'[{"labels": {"a": 12345678901234567890123}}]', "strings"),  # a number beyond 64 bits: still not a string
    ],
)
def test_bodies_the_fast_parser_refuses_are_a_json_400(token, body, message):
    r = wsgi_post(INGEST, body, token=token)
    assert r.status_code == 400 and message in r.json()["detail"], r.body
    assert not Alert.objects.exists()


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (INGEST, [_alert(), {**_alert(instance="h2"), "extra": _deep(70)}]),  # a key normalise does not read
        (INGEST, [_alert(), _deep(70)]),  # not an alert: the depth answers first
        (INGEST, {"alerts": _deep(70)}),  # not a list
        (INGEST, [_alert(labels={"a": _deep(70)})]),  # labels that are not strings
        (WEBHOOK, {"version": "4", "alerts": [_alert()], "commonLabels": {"x": _deep(70)}}),
        (WEBHOOK, {"version": "3", "alerts": _deep(70)}),
    ],
)
def test_a_body_nested_too_deeply_is_a_400_whatever_else_is_wrong(token, path, body):
    r = wsgi_post(path, body, token=token)
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], r.body
    assert not Alert.objects.exists()


def test_too_deep_answers_before_the_rate_limit_and_a_revoked_token(token, world, settings):
    settings.ALERTS_INGEST_RATE_PER_MINUTE = 1
    assert wsgi_post(INGEST, [_alert(instance="1")], token=token).status_code == 200
    assert wsgi_post(INGEST, [_alert(instance="2")], token=token).status_code == 429
    r = wsgi_post(INGEST, [{**_alert(instance="3"), "x": _deep(70)}], token=token)
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    assert Alert.objects.count() == 1


def test_the_depth_walk_is_left_out_when_every_bracket_is_an_alert_its_labels_or_annotations(token, monkeypatch):
    from apps.core.api import parsers

    walked = []
    real = parsers._depth_exceeds
    monkeypatch.setattr(parsers, "_depth_exceeds", lambda data, limit: walked.append(1) or real(data, limit))
    batch = [_alert(instance=f"h{i}") for i in range(70)]  # 70 alerts: more brackets than the limit
    assert wsgi_post(INGEST, batch, token=token).json()["created"] == 70
    assert walked == []
    # a bracket inside a string is not a container: the walk runs, and the body is taken
    assert wsgi_post(INGEST, [*batch, _alert(instance="[x]" * 70)], token=token).json()["created"] == 1
    assert walked == [1]


def test_rate_count_and_version_token_share_one_round_trip(world, monkeypatch):
    from apps.core import cache as core_cache

    tenant_id, now = world.tenant("a").pk, datetime.now(UTC)
    first = ingest_config.rate_and_version(tenant_id, 3, now)  # no token yet: one started
    assert first == (3, ingest_config._snapshots.token(tenant_id)) and first[1]

    def no_second_trip(key, ttl=None):
        raise AssertionError("the token was in the counter's round trip")

    monkeypatch.setattr(core_cache, "version_token", no_second_trip)
    assert ingest_config.rate_and_version(tenant_id, 2, now) == (5, first[1])
    ingest_config.bump_version(tenant_id)
    monkeypatch.undo()
    used, token = ingest_config.rate_and_version(tenant_id, 1, now)
    assert used == 6 and token == ingest_config._snapshots.token(tenant_id) != first[1]


def test_timestamps_shared_by_a_batch_parse_once_and_keep_their_instant():
    now = datetime.now(UTC)
    go = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"  # Go sends nanoseconds
    same = (now - timedelta(minutes=1)).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).isoformat()
    items = [{"labels": {"i": str(i)}, "startsAt": go if i % 2 else same, "endsAt": "0001-01-01T00:00:00Z"} for i in range(6)]
    firing, resolved = normalise(items, tenant_id=1, now=now, default_ends_after=None)
    assert not resolved and len(firing) == 6 and {row["ends_at"] for row in firing} == {None}
    assert len({datetime.fromisoformat(row["starts_at"]) for row in firing}) == 1
    with pytest.raises(Exception, match="alerts\\[3\\].startsAt"):
        normalise([*items[:3], {"labels": {"x": "y"}, "startsAt": "soon"}], tenant_id=1, now=now, default_ends_after=None)


def _expected_announcement(new: list[Alert], source: str, user_ids: list[int], channels: list[str]) -> dict:
    """The grouped `alert.fired` payload as the service specifies it (what notify's single-alert
    payload says, for a batch)."""
    rank = {"info": 1, "warning": 2, "critical": 3}
    worst = max((a.severity for a in new), key=rank.__getitem__)
    names = sorted({a.labels.get("alertname", "") for a in new} - {""})
    title = new[0].title if len(new) == 1 else f"{len(new)} new alert(s) from {source}" + (f": {', '.join(names[:5])}" if names else "")
    url = f"/admin/alerts/alert/{new[0].pk}/change/" if len(new) == 1 else "/admin/alerts/alert/?status__exact=firing"
    notify = {"type": "alert_external", "priority": {"critical": "urgent", "warning": "high"}.get(worst, "low"), "title": title,
              "action_url": url, "action_label": "Open alerts"}
    notify.update({"user_ids": user_ids} if user_ids else {"roles": ["owner", "admin", "operator", "support_agent"]})
    if channels:
        notify["channels"] = channels
    return {"id": new[0].pk, "object_type": "alerts.alert", "title": title, "url": url, "alert_type": "external",
            "severity": worst, "count": len(new), "alert_ids": [a.pk for a in new][:100], "source": source, "notify": notify}


@pytest.mark.parametrize("inhibition", [False, True], ids=["one-statement", "transactional"])
def test_the_batch_announcement_is_the_outbox_row_publish_writes(world, inhibition):
    from apps.alerts.ingest import alerts_ingest
    from apps.core.events import publish

    tenant = world.tenant("a")
    if inhibition:  # a rule that mutes nothing: the upsert and the event are two statements
        InhibitRuleFactory(tenant=tenant, source_matchers=[{"name": "alertname", "op": "=", "value": "Nothing"}])
    sub = AlertSubscriptionFactory(tenant=tenant, user=world.user("a", "operator"), alert_type="external",
                                   min_severity=Severity.CRITICAL, channels=["email"])
    SilenceFactory(tenant=tenant, matchers=[{"name": "instance", "op": "=", "value": "muted"}])
    # names out of order, repeated, non-ASCII, missing; more than five; a muted one; a repeat
    names = ["zeta", "Alpha", "émoji", "beta", "zeta", None, "Gamma", "delta", "alpha"]
    batch = [{"labels": {"instance": f"h{i}", "severity": "warning", **({"alertname": n} if n else {})}} for i, n in enumerate(names)]
    batch += [{"labels": {"alertname": "Quiet", "instance": "muted"}}, batch[0]]
    for alerts, user_ids in ((batch, []), ([_alert(name="Disk", instance="x", severity="critical")], [sub.user_id])):
        Event.objects.all().delete()
        result = alerts_ingest(tenant_id=tenant.pk, alerts=alerts, source_name="api")
        event = Event.objects.get(name="alert.fired")
        new = list(Alert.objects.filter(pk__in=event.payload["alert_ids"]).order_by("pk"))
        assert result.created == len(new) + result.silenced and len(new) == (len(names) if alerts is batch else 1)
        expected = _expected_announcement(new, "api", user_ids, ["email"] if user_ids else [])
        assert event.payload == expected
        reference = publish("alert.fired", tenant=tenant.pk, payload=expected)
        reference.refresh_from_db()
        for name in ("name", "topic", "tenant_id", "actor_id", "status", "attempts", "handled", "last_error", "dispatched_at"):
            assert getattr(event, name) == getattr(reference, name), name
        assert abs(event.next_attempt_at - reference.next_attempt_at) < timedelta(seconds=5)
    # a batch of repeats announces nothing
    Event.objects.all().delete()
    assert alerts_ingest(tenant_id=tenant.pk, alerts=batch, source_name="api").created == 0
    assert not Event.objects.filter(name="alert.fired").exists()


@pytest.mark.django_db(transaction=True)
def test_one_statement_batch_reconnects_a_closed_connection(world):
    # the configuration snapshot is cached, so nothing else opens the connection first
    from django.db import connection

    from apps.alerts.ingest import alerts_ingest

    tenant_id = world.tenant("a").pk
    assert alerts_ingest(tenant_id=tenant_id, alerts=[_alert(instance="h1")]).created == 1
    connection.close()  # as at the end of a request past CONN_MAX_AGE
    assert alerts_ingest(tenant_id=tenant_id, alerts=[_alert(instance="h2")]).created == 1
    assert Event.objects.filter(name="alert.fired").count() == 2
