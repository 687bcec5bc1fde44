"""Load: 200 concurrent clients for 60 s against gunicorn (3 workers × 8 threads) + PostgreSQL on
loopback, on a mix — list tickets 40 %, create ticket 20 %, ingest an alert 20 %, read
notifications 20 % — through tests/load/driver.py. Prints requests, rps, errors, p50/p95/p99 and
whether every created ticket and alert is in the database. Own tenant `bench-load`, its own
redis-server on another port; everything created is deleted at the end.
BENCH_LOAD_CLIENTS / BENCH_LOAD_SECONDS scale it down."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LOG_LEVEL", "WARNING")
from common import BENCH_DB, ROOT, line, setup_django

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
SLUG = "bench-load"


def main() -> None:
    setup_django()
    sys.path.insert(0, str(ROOT))
    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind, Role
    from apps.tickets.models import Ticket
    from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from tests.faults.harness import RedisServer, jwt_for, portal_env, start_web
    from tests.load.driver import run_load, seed_notifications

    cleanup()
    OrganizationFactory(kind=OrgKind.PLATFORM, slug="platform", name="Platform")
    tenant = OrganizationFactory(kind=OrgKind.TENANT, slug=SLUG, name="Bench load")
    users = []
    for i in range(8):
        user = UserFactory(username=f"{SLUG}-{i}")
        MembershipFactory(user=user, organization=tenant, role=[Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.OWNER][i % 4])
        users.append(user)
    seed_notifications(tenant, users, per_user=50)
    ingest = ingest_token_create(actor=None, tenant=tenant, name="bench")[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    redis = RedisServer(tmp).start()
    env = portal_env(database_url=BENCH_DB, redis_url=redis.url, DB_CONN_MAX_AGE=60, ALERTS_INGEST_RATE_PER_MINUTE=100_000_000,
                     LOG_LEVEL="ERROR", DEBUG="false")
    web, base = start_web(env, tmp / "web.log", workers=3, threads=8)
    try:
        result = run_load(base=base, tokens=[jwt_for(u) for u in users], ingest_token=ingest, prefix=SLUG,
                          clients=CLIENTS, seconds=SECONDS)
    finally:
        web.stop()
        redis.stop()
    tickets = Ticket.objects.filter(tenant=tenant, subject__startswith=f"{SLUG} ").count()
    alerts = Alert.objects.filter(tenant=tenant, labels__alertname__startswith=f"{SLUG}-").count()
    errors = sum(n for status, n in result.statuses.items() if status == "exception" or int(status) >= 400)
    line(
        "load_mixed", clients=CLIENTS, seconds=int(SECONDS), requests=result.requests, rps=round(result.requests / result.elapsed),
        errors=errors, p50_ms=round(result.p(50)), p95_ms=round(result.p(95)), p99_ms=round(result.p(99)),
        tickets_created=result.tickets_created, tickets_in_db=tickets, alerts_ingested=result.alerts_ingested, alerts_in_db=alerts,
        rows_accounted="yes" if (tickets, alerts) == (result.tickets_created, result.alerts_ingested) else "NO",
    )
    if result.errors:
        print("first errors:", result.errors[:5], file=sys.stderr)
    cleanup()


def cleanup() -> None:
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.core.models import TenantOwnedModel
    from apps.tenants.models import Organization

    org = Organization.objects.filter(slug=SLUG).first()
    if org:
        # children before parents: retry the tenant-owned models until nothing is left
        models = [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]
        for _ in range(5):
            for model in models:
                try:
                    model._base_manager.filter(tenant=org).delete()
                except Exception:
                    connection.close()
        Organization.objects.filter(pk=org.pk).delete()
    get_user_model().objects.filter(username__startswith=f"{SLUG}-").delete()


if __name__ == "__main__":
    main()
