"""Load: wrk (bench/load_mixed.lua) with 200 connections for 60 s against gunicorn with the
deployment's settings (config/gunicorn.conf.py) + PostgreSQL on loopback, on a mix — list tickets
40 %, create a ticket 20 %, ingest an alert 20 %, read notifications 20 % — as a tenant admin
(JWT) and the tenant's ingestion token. wrk's C threads leave the cores to the server (the former
200 Python threads competed with it). Prints requests, rps, errors, p50/p99 and whether every
created ticket and alert is in the database. Own tenant `bench-load`; everything created is
deleted at the end. BENCH_LOAD_CLIENTS (connections) / BENCH_LOAD_SECONDS scale it."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LOG_LEVEL", "WARNING")
from common import ROOT, LiveServer, line, setup_django
from wrk import run_wrk

CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
SLUG = "bench-load"


def main() -> None:
    setup_django()
    sys.path.insert(0, str(ROOT))
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind, Role
    from apps.tickets.models import Ticket
    from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from tests.load.driver import seed_notifications

    cleanup()
    if not OrganizationFactory._meta.model.objects.filter(slug="platform").exists():
        OrganizationFactory(kind=OrgKind.PLATFORM, slug="platform", name="Platform")
    tenant = OrganizationFactory(kind=OrgKind.TENANT, slug=SLUG, name="Bench load")
    admin = UserFactory(username=f"{SLUG}-admin")
    MembershipFactory(user=admin, organization=tenant, role=Role.ADMIN)
    seed_notifications(tenant, [admin], per_user=50)
    ingest = ingest_token_create(actor=None, tenant=tenant, name="bench")[1]
    jwt = str(RefreshToken.for_user(admin).access_token)
    with LiveServer(ALERTS_INGEST_RATE_PER_MINUTE="100000000", LOG_LEVEL="ERROR") as server:
        _warm_up(server.url, jwt)
        # gunicorn's own timeout (60 s): a slow answer is waited for and counted, not dropped
        result = run_wrk(server.url, seconds=SECONDS, connections=CLIENTS, threads=2, script=str(ROOT / "bench" / "load_mixed.lua"),
                         script_args=[jwt, ingest, SLUG, str(int(SECONDS))], timeout=60)
    mix = re.search(r"mix: tickets_created=(\d+) alerts_ingested=(\d+) failed=(\d+)", result.output)
    created, ingested, failed = (int(g) for g in mix.groups())
    tickets = Ticket.objects.filter(tenant=tenant, subject__startswith=f"{SLUG} ").count()
    alerts = Alert.objects.filter(tenant=tenant, labels__alertname__startswith=f"{SLUG}-").count()
    line(
        "load_mixed", clients=CLIENTS, seconds=int(SECONDS), requests=result.requests, rps=round(result.rate),
        errors=result.errors + failed, p50_ms=round(result.p50_ms), p99_ms=round(result.p99_ms),
        tickets_created=created, tickets_in_db=tickets, alerts_ingested=ingested, alerts_in_db=alerts,
        rows_accounted="yes" if (tickets, alerts) == (created, ingested) else "NO", load1=os.getloadavg()[0],
    )
    cleanup()


def _warm_up(base: str, jwt: str) -> None:
    """The workers' first requests (lazy imports, connections), reads only, before the clock."""
    import urllib.request

    for _ in range(16):
        for path in ("/api/v1/tickets/?page_size=20", "/api/v1/notifications/?page_size=20", "/api/v1/notifications/unread-count/"):
            with urllib.request.urlopen(urllib.request.Request(base + path, headers={"Authorization": f"Bearer {jwt}"}), timeout=60) as r:
                r.read()


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
