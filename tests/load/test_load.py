"""Load on gunicorn + PostgreSQL on loopback (scaled for CI by LOAD_CLIENTS / LOAD_SECONDS; the
full 200 × 60 s figure is bench/bench_load.py): 0 errors, every created row accounted for, p95
printed."""

from __future__ import annotations

import os

import pytest

from tests.faults.harness import jwt_for, portal_env, start_web
from tests.load.driver import run_load, seed_notifications

pytestmark = [pytest.mark.django_db(transaction=True)]

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "50"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))


def test_mixed_load_has_no_errors_and_loses_no_rows(world, private_redis, test_db_url, tmp_path):
    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.tickets.models import Ticket

    tenant = world.tenant("a")
    users = [world.user("a", role) for role in ("admin", "operator", "support_agent", "owner")]
    seed_notifications(tenant, users)
    ingest = ingest_token_create(actor=None, tenant=tenant, name="load")[1]
    env = portal_env(database_url=test_db_url, redis_url=private_redis.url, DB_CONN_MAX_AGE=60,
                     ALERTS_INGEST_RATE_PER_MINUTE=10_000_000, LOG_LEVEL="ERROR", CELERY_TASK_ALWAYS_EAGER="false")
    web, base = start_web(env, tmp_path / "web.log", workers=3, threads=8)
    try:
        result = run_load(base=base, tokens=[jwt_for(u) for u in users], ingest_token=ingest, prefix="load-ci",
                          clients=CLIENTS, seconds=SECONDS)
    finally:
        web.stop()
    assert result.requests > CLIENTS, result.statuses
    assert not result.errors, (result.errors[:10], web.output()[-3000:])
    assert Ticket.objects.filter(subject__startswith="load-ci ").count() == result.tickets_created
    assert Alert.objects.filter(tenant=tenant, labels__alertname__startswith="load-ci-").count() == result.alerts_ingested
    print(f"\nLOAD ci: clients={CLIENTS} seconds={SECONDS:.0f} requests={result.requests} rps={result.requests / result.elapsed:.0f} "
          f"errors=0 p50_ms={result.p(50):.0f} p95_ms={result.p(95):.0f} p99_ms={result.p(99):.0f} "
          f"tickets={result.tickets_created} alerts={result.alerts_ingested} rows_accounted=all")
