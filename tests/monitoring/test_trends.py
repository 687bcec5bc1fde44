"""Trend rules against real loopback servers: the p95 of stored latencies over a budget, a real
self-signed certificate's notAfter read over TLS, transitions published once, maintenance
windows, the API (validation, evaluate now) and the management command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from apps.alerts.choices import AlertStatus, AlertType
from apps.alerts.models import Alert, AlertRule
from apps.core.models import Event
from apps.maintenance.services import window_create
from apps.monitoring import selectors
from apps.monitoring.checkers import fetch_cert_expiry
from apps.monitoring.choices import EndpointStatus, ResultStatus, TrendState
from apps.monitoring.models import CheckResult, TrendRule
from apps.monitoring.schedules import SCHEDULES
from apps.monitoring.services import (
    endpoint_check_now,
    endpoint_create,
    trend_rule_create,
    trend_rule_update,
    trend_rules_evaluate,
)
from apps.tickets.choices import TicketStatus
from apps.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _endpoint(world, port, kind="http", **kw):
    fields = dict(name=f"web-{port}", kind=kind, host="127.0.0.1", port=port, interval_seconds=60, timeout_seconds=5,
                  expected_response_ms=10_000, verify_tls=False, labels={"instance": "web-1", "service": "web"})
    fields.update(kw)
    return endpoint_create(actor=None, tenant_id=world.tenant("a").pk, **fields)


def _checks(endpoint, n):
    for _ in range(n):
        endpoint_check_now(endpoint, actor=None)


def _latency_rule(endpoint, **kw):
    return trend_rule_create(actor=None, endpoint=endpoint, name=kw.pop("name", "p95 budget"), kind="latency_p95",
                             threshold_ms=kw.pop("threshold_ms", 300), window_minutes=30, min_samples=kw.pop("min_samples", 5), **kw)


def _names(prefix="endpoint.trend_"):
    return list(Event.objects.filter(name__startswith=prefix).order_by("created_at").values_list("name", flat=True))


def test_slow_responses_breach_the_p95_budget_open_a_ticket_and_recovery_resolves_it(world, http_server, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    AlertRule.objects.create(tenant=tenant, name="early warning", rule_type="alert",
                             conditions={"alert_types": [AlertType.ENDPOINT_TREND], "label_matchers": [{"name": "service", "op": "=", "value": "web"}]},
                             actions=[{"type": "open_ticket"}])
    e = _endpoint(world, http_server.port)
    rule = _latency_rule(e)
    http_server.behaviour.delay = 0.45
    _checks(e, 4)
    assert trend_rules_evaluate() == {"evaluated": 1, "breached": 0, "recovered": 0}  # 4 < min_samples: no verdict
    assert TrendRule.objects.get(pk=rule.pk).state == TrendState.UNKNOWN
    _checks(e, 2)
    e.refresh_from_db()
    assert e.status == EndpointStatus.UP  # no hard failure: the endpoint itself is fine
    with django_capture_on_commit_callbacks(execute=True):
        assert trend_rules_evaluate()["breached"] == 1
    rule.refresh_from_db()
    assert rule.state == TrendState.BREACHED and rule.last_samples == 6 and rule.last_value > 300
    event = Event.objects.get(name="endpoint.trend_breached")
    assert event.payload["threshold"] == 300 and event.payload["labels"]["instance"] == "web-1" and "p95 latency" in event.payload["title"]
    alert = Alert.objects.get(alert_type=AlertType.ENDPOINT_TREND)
    assert alert.resource_type == "monitoring.trendrule" and alert.labels["endpoint"] == e.name and alert.labels["trend"] == "latency_p95"
    ticket = Ticket.objects.get(pk=alert.ticket_id)  # the rule's open_ticket action ran
    assert ticket.metadata["incident"]["alert_id"] == alert.pk

    # still slow: evaluated again, nothing new is published
    trend_rules_evaluate()
    assert _names() == ["endpoint.trend_breached"]

    # the slow results leave the window; fast ones come in → recovered → alert and ticket resolved
    CheckResult.objects.filter(endpoint=e).update(checked_at=F("checked_at") - timedelta(minutes=31))
    http_server.behaviour.delay = 0
    _checks(e, 5)
    with django_capture_on_commit_callbacks(execute=True):
        assert trend_rules_evaluate()["recovered"] == 1
    assert _names() == ["endpoint.trend_breached", "endpoint.trend_recovered"]
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.RESOLVED
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.RESOLVED


def test_p95_is_postgres_percentile_cont_over_successful_results_outside_maintenance(world, http_server):
    e = _endpoint(world, http_server.port)
    rule = _latency_rule(e)
    now = timezone.now()
    rows = [(10.0, ResultStatus.UP, False), (20.0, ResultStatus.UP, False), (30.0, ResultStatus.SLOW, False),
            (400.0, ResultStatus.WARNING, False), (5000.0, ResultStatus.DOWN, False), (9000.0, ResultStatus.UP, True)]
    CheckResult.objects.bulk_create([CheckResult(endpoint=e, checked_at=now - timedelta(minutes=1), status=s, latency_ms=ms, in_maintenance=m)
                                     for ms, s, m in rows])
    CheckResult.objects.create(endpoint=e, checked_at=now - timedelta(minutes=45), status=ResultStatus.UP, latency_ms=7000.0)  # outside the window
    samples, p95 = selectors.latency_p95_by_rule([rule], now=now)[rule.pk]
    assert samples == 4
    assert p95 == pytest.approx(selectors.percentile_cont([10.0, 20.0, 30.0, 400.0], 0.95))
    assert p95 == pytest.approx(344.5)


def test_real_certificate_not_after_is_read_and_expiring_soon_breaches(world, https_server):
    e = _endpoint(world, https_server.port, kind="https", tls_expiry_warning_days=1)
    rule = trend_rule_create(actor=None, endpoint=e, name="certificate", kind="tls_expiry", days=14, severity="critical")
    endpoint_check_now(e, actor=None)
    e.refresh_from_db()
    assert e.tls_expires_at == https_server.not_after  # the certificate's own notAfter, over TLS
    assert e.status == EndpointStatus.UP  # 3 days left is past the endpoint's 1-day warning
    trend_rules_evaluate()
    rule.refresh_from_db()
    assert rule.state == TrendState.BREACHED and 2.9 < rule.last_value <= 3.0
    event = Event.objects.get(name="endpoint.trend_breached")
    assert event.payload["severity"] == "critical" and event.payload["unit"] == "days" and "expires in 3.0 days" in event.payload["title"]

    https_server.use_certificate(timedelta(days=90))  # renewed
    endpoint_check_now(e, actor=None)
    trend_rules_evaluate()
    assert TrendRule.objects.get(pk=rule.pk).state == TrendState.OK
    assert _names() == ["endpoint.trend_breached", "endpoint.trend_recovered"]


def test_certificate_is_read_by_a_handshake_of_its_own(https_server):
    import asyncio

    assert asyncio.run(fetch_cert_expiry("127.0.0.1", https_server.port, 5)) == https_server.not_after


def test_breach_inside_a_maintenance_window_waits_for_the_window_to_end(world, http_server):
    e = _endpoint(world, http_server.port)
    rule = _latency_rule(e)
    now = timezone.now()
    CheckResult.objects.bulk_create([CheckResult(endpoint=e, checked_at=now - timedelta(minutes=2), status=ResultStatus.UP, latency_ms=500.0)
                                     for _ in range(6)])
    window = window_create(actor=None, tenant_id=e.tenant_id, name="upgrade", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    endpoint_check_now(e, actor=None)  # marks the endpoint in maintenance
    trend_rules_evaluate()
    assert TrendRule.objects.get(pk=rule.pk).state == TrendState.UNKNOWN and not _names()
    window.delete()
    endpoint_check_now(e, actor=None)
    trend_rules_evaluate()
    assert TrendRule.objects.get(pk=rule.pk).state == TrendState.BREACHED and _names() == ["endpoint.trend_breached"]


def test_disabling_a_breached_rule_publishes_its_recovery(world, http_server):
    e = _endpoint(world, http_server.port)
    rule = _latency_rule(e)
    CheckResult.objects.bulk_create([CheckResult(endpoint=e, checked_at=timezone.now(), status=ResultStatus.UP, latency_ms=500.0) for _ in range(5)])
    trend_rules_evaluate()
    trend_rule_update(TrendRule.objects.get(pk=rule.pk), actor=world.user("a", "admin"), enabled=False)
    assert _names() == ["endpoint.trend_breached", "endpoint.trend_recovered"]
    assert TrendRule.objects.get(pk=rule.pk).state == TrendState.UNKNOWN
    assert Event.objects.get(name="endpoint.trend_recovered").payload["reason"] == "rule disabled"


def test_api_validates_rules_and_evaluates_now(world, api, http_server):
    e = _endpoint(world, http_server.port)
    client = api.as_user(world.user("a", "admin"))
    url = "/api/v1/monitoring/trend-rules/"
    bad = client.post(url, {"name": "x", "endpoint": e.pk, "kind": "tls_expiry", "days": 7}, format="json")
    assert bad.status_code == 400 and "HTTPS" in str(bad.json()), bad.content
    bad = client.post(url, {"name": "x", "endpoint": e.pk, "kind": "latency_p95"}, format="json")
    assert bad.status_code == 400 and "threshold_ms" in bad.json()["errors"]
    foreign = endpoint_create(actor=None, tenant_id=world.tenant("b").pk, name="b-web", kind="http", host="127.0.0.1", port=9)
    assert client.post(url, {"name": "x", "endpoint": foreign.pk, "kind": "latency_p95", "threshold_ms": 5}, format="json").status_code == 400
    made = client.post(url, {"name": "p95", "endpoint": e.pk, "kind": "latency_p95", "threshold_ms": 5, "min_samples": 1}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["tenant"] == world.tenant("a").pk and body["state"] == "unknown" and body["created_by"] == world.user("a", "admin").pk
    http_server.behaviour.delay = 0.02
    _checks(e, 2)
    viewer = api.as_user(world.user("a", "viewer"))
    assert viewer.post(f"{url}{body['id']}/evaluate/").status_code == 403
    done = api.as_user(world.user("a", "operator")).post(f"{url}{body['id']}/evaluate/")
    assert done.status_code == 200 and done.json()["state"] == "breached" and done.json()["last_samples"] == 2
    listed = api.as_user(world.user("a", "admin")).get(url, {"state": "breached"}).json()["results"]
    assert [r["id"] for r in listed] == [body["id"]]


def test_command_and_beat_schedule(world, http_server, capsys):
    e = _endpoint(world, http_server.port)
    _latency_rule(e, min_samples=1)
    _checks(e, 1)
    call_command("evaluate_trend_rules")
    out = capsys.readouterr().out
    assert "1 evaluated" in out and "p95 budget" in out
    assert any(s.task == "monitoring.evaluate_trends" for s in SCHEDULES)


def test_endpoint_and_rule_changes_are_audited(world, http_server):
    admin = world.user("a", "admin")
    e = endpoint_create(actor=admin, tenant_id=world.tenant("a").pk, name="audited", kind="http", host="127.0.0.1", port=http_server.port)
    rule = trend_rule_create(actor=admin, endpoint=e, name="p95", kind="latency_p95", threshold_ms=100)
    trend_rule_update(rule, actor=admin, threshold_ms=250)
    changed = Event.objects.filter(name="config.updated", payload__object_type="monitoring.trendrule").get()
    assert changed.actor_id == admin.pk and changed.tenant_id == e.tenant_id
    assert changed.payload["changes"] == [{"field": "threshold_ms", "label": "threshold ms", "from": "100", "to": "250"}]
    assert changed.payload["title"].startswith("a-admin changed trend rule 'p95': threshold ms 100 → 250")
    assert Event.objects.filter(name="config.created", payload__object_type="monitoring.endpoint", actor_id=admin.pk).exists()
    trend_rule_update(rule, actor=admin, threshold_ms=250)  # nothing changed: nothing published
    assert Event.objects.filter(name="config.updated", payload__object_type="monitoring.trendrule").count() == 1
