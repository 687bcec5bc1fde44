"""Monitoring API: register/update/unregister, results, trends, health, service checks, ops status."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitoring.models import CheckResult, Endpoint
from tests.factories.monitoring import EndpointFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring/endpoints/"


def test_register_update_check_pause_and_unregister(world, api, http_server):
    client = api.as_user(world.user("a", "operator"))
    resp = client.post(BASE, {"name": "site", "kind": "http", "host": "127.0.0.1", "port": http_server.port,
                              "interval_seconds": 30, "timeout_seconds": 2}, format="json")
    assert resp.status_code == 201, resp.content
    pk = resp.json()["id"]
    assert Endpoint.objects.get(pk=pk).tenant == world.tenant("a")
    bad = client.patch(f"{BASE}{pk}/", {"interval_seconds": 3}, format="json")
    assert bad.status_code == 400 and "interval_seconds" in str(bad.json())
    checked = client.post(f"{BASE}{pk}/check-now/")
    assert checked.status_code == 200 and checked.json()["status"] == "up"
    assert client.get(f"{BASE}{pk}/results/").json()["results"][0]["status"] == "up"
    assert client.post(f"{BASE}{pk}/pause/").json()["enabled"] is False
    assert client.post(f"{BASE}{pk}/resume/").json()["enabled"] is True
    viewer = api.as_user(world.user("a", "viewer"))
    assert viewer.post(f"{BASE}{pk}/check-now/").status_code == 403
    assert api.as_user(world.user("a", "admin")).delete(f"{BASE}{pk}/").status_code == 204


def test_trends_availability_and_percentiles(world, api):
    e = EndpointFactory(tenant=world.tenant("a"))
    now = timezone.now()
    rows = [CheckResult(endpoint=e, checked_at=now - timedelta(minutes=i), status="up", latency_ms=float(i)) for i in range(1, 101)]
    rows += [CheckResult(endpoint=e, checked_at=now - timedelta(minutes=30), status="down") for _ in range(4)]
    rows.append(CheckResult(endpoint=e, checked_at=now - timedelta(days=3), status="down"))  # outside 24h
    CheckResult.objects.bulk_create(rows)
    data = api.as_user(world.user("a", "viewer")).get(f"{BASE}{e.pk}/trends/", {"window": "24h"}).json()
    assert data["checks"] == 104 and data["failures"] == 4
    assert data["availability_percent"] == pytest.approx(100 * 100 / 104, rel=1e-3)
    assert data["latency_p50_ms"] == pytest.approx(50.5) and data["latency_p95_ms"] == pytest.approx(95.05)
    assert sum(b["checks"] for b in data["buckets"]) == 104
    assert api.get(f"{BASE}{e.pk}/trends/", {"window": "1y"}).status_code == 400


def test_health_summary_counts_only_visible_endpoints(world, api):
    EndpointFactory(tenant=world.tenant("a"), status="down", status_since=timezone.now(), name="a-down")
    EndpointFactory(tenant=world.tenant("a"), status="up")
    EndpointFactory(tenant=world.tenant("b"), status="down")
    data = api.as_user(world.user("a", "viewer")).get("/api/v1/monitoring/health").json()
    assert data["status"] == "down" and data["counts"]["down"] == 1 and data["counts"]["up"] == 1
    assert [w["name"] for w in data["worst"]] == ["a-down"]
    assert api.as_user(world.user("a", "customer")).get("/api/v1/monitoring/health").status_code == 403


def test_service_health_check_and_operations_status(world, api):
    client = api.as_user(world.user("platform", "admin"))
    resp = client.post("/api/v1/monitoring/health-check")
    body = resp.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    # no worker runs in this test: the Celery check must say so, and the answer is 503
    assert body["checks"]["celery_workers"]["ok"] is False and resp.status_code == 503
    ops = client.get("/api/v1/operations/status").json()
    assert {"monitoring", "queues", "workers", "maintenance_runs"} <= set(ops)
    tenant_view = api.as_user(world.user("a", "viewer")).get("/api/v1/operations/status").json()
    assert "queues" not in tenant_view and "monitoring" in tenant_view
