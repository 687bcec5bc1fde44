"""Health: liveness never depends on anything, readiness names what failed, workers/beat reported apart."""

import re
import time

import pytest
from django.db import connections

LIVE = ["/health/live", "/health/live/"]
READY = ["/health/ready", "/health/ready/", "/health/"]
REPR = re.compile(r"<[^>]* at 0x[0-9a-f]+>|0x[0-9a-f]{6,}")


@pytest.fixture
def db_down(transactional_db):
    """The default connection pointed at a closed port (restored afterwards)."""
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


@pytest.mark.parametrize("path", LIVE + READY)
def test_probes_answer_ok_without_reprs(db, client, path):
    r = client.get(path)
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["status"] == "ok"
    assert not REPR.search(r.content.decode())


def test_ready_names_each_check(db, client):
    checks = client.get("/health/ready").json()["checks"]
    assert set(checks) == {"database", "cache", "broker", "migrations"}
    assert all(c["ok"] for c in checks.values())


def test_probes_answer_any_host_without_redirect(db, client, settings):
    # orchestrators probe the container by IP; production's host list and HTTPS redirect must not answer them
    settings.ALLOWED_HOSTS = ["portal.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/health/live", "/health/ready"):
        assert client.get(path, HTTP_HOST="10.1.2.3:8000").status_code == 200


def test_database_down_fails_ready_not_live(db_down, client):
    started = time.monotonic()
    r = client.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "fail" and body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert not REPR.search(r.content.decode())
    assert client.get("/health/live").status_code == 200
    assert time.monotonic() - started < 5


def test_redis_down_fails_ready_naming_cache_and_broker(db, client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    r = client.get("/health/ready")
    assert r.status_code == 503, r.content
    failed = {name for name, c in r.json()["checks"].items() if not c["ok"]}
    assert failed == {"cache", "broker"}
    assert client.get("/health/live").status_code == 200


def test_unapplied_migration_fails_ready(db, client, monkeypatch):
    from apps.core import health

    monkeypatch.setattr(health, "_migrated", False)
    monkeypatch.setattr("django.db.migrations.executor.MigrationExecutor.migration_plan",
                        lambda self, targets, clean_start=False: [("core.9999_pending", False)])
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["checks"]["migrations"]["ok"] is False


def test_status_needs_staff_or_token(world, client, settings):
    assert client.get("/health/status").status_code == 403
    settings.METRICS_TOKEN = "tok-456"
    assert client.get("/health/status", HTTP_AUTHORIZATION="Bearer tok-456").status_code in (200, 503)


def test_status_reports_worker_heartbeat_age_and_stays_out_of_liveness(celery_worker, client, settings, monkeypatch):
    from apps.core import health
    from apps.core.tasks import dispatch_events_task

    monkeypatch.setattr(health, "_written", {})  # an earlier test's worker wrote within 10 s, and the cache was cleared since
    from tests.conftest import wait_for

    settings.METRICS_TOKEN = "tok-456"
    auth = {"HTTP_AUTHORIZATION": "Bearer tok-456"}
    from apps.core.health import record_heartbeat

    dispatch_events_task.delay([])  # any task run records its worker's heartbeat
    body = wait_for(lambda: (b := client.get("/health/status", **auth).json())["workers"] and b)
    worker = body["workers"][0]
    assert worker["name"] and 0 <= worker["last_heartbeat_seconds"] < 15 and worker["stale"] is False
    assert not REPR.search(str(body))
    record_heartbeat("beat", "old-beat", at=time.time() - 3600)
    body = client.get("/health/status", **auth).json()
    assert any(b["name"] == "old-beat" and b["stale"] for b in body["beat"])
    assert client.get("/health/live").status_code == 200


def test_status_reports_a_real_beat_process(celery_beat, client, settings):
    from tests.conftest import wait_for

    settings.METRICS_TOKEN = "tok-456"
    body = wait_for(lambda: (b := client.get("/health/status", HTTP_AUTHORIZATION="Bearer tok-456").json())["beat"] and b)
    assert body["beat"][0]["name"].startswith("beat@") and body["beat"][0]["stale"] is False
