"""Admin index (staff dashboard) render time with 1,000,000 tickets (20 tenants).

Seeds tickets with one INSERT … SELECT generate_series into bench tenants `bench-dash-*`, runs
the beat work once (summary refresh and account health over all tenants, timed), then renders
the admin index through Django's test client (in-process, same code path as a request) as a
platform superuser (sum over 20 tenants) and as one tenant's admin: 5 warm-ups + 50 timed
requests each, plus the SQL query count. django-helpdesk has no dashboard with aggregates; the
peer figures are its ticket list (page + datatables JSON, the default view) and its admin
changelist at 1M tickets, read from ../shared/bench/peers/RESULTS.md §4 (not re-run here).
Everything created is deleted at the end.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
from common import helpdesk_p50, line, percentile, setup_django, timed

N = int(os.environ.get("BENCH_TICKETS", "1000000"))
TENANTS = 20
REQS, WARM = 50, 5
PREFIX = "bench-dash-"


def peer_figures() -> dict:
    return {
        "list_page": helpdesk_p50("staff ticket list page (default"),
        "list_json": helpdesk_p50("datatables JSON behind the *default* list"),
        "admin": helpdesk_p50("Django admin changelist, page 1"),
    }


def seed(tenant_ids: list[int]) -> float:
    from django.db import connection

    start = time.perf_counter()
    tids = "(ARRAY[" + ",".join(map(str, tenant_ids)) + "])"
    sql = f"""
    INSERT INTO tickets_ticket (tenant_id, number, subject, status, priority, origin_type, target_type,
        escalation_level, sla_started_at, sla_paused_seconds, first_response_due_at, resolution_due_at,
        sla_at_risk, first_response_breached, resolution_breached, sla_breached_at, tags, metadata, created_at, updated_at)
    SELECT {tids}[1 + i % {TENANTS}], 'TCK-D' || lpad(i::text, 7, '0'), 'Bench ticket ' || i,
        (ARRAY['open','open','in_progress','waiting','escalated','resolved','resolved','resolved','closed','closed',
               'closed','closed','closed','closed','closed','closed','closed','closed','closed','closed'])[1 + (i / 50) % 20],
        (ARRAY['low','normal','normal','high','urgent','critical'])[1 + (i / 7) % 6], 'customer', 'tenant', 0,
        c, 0, c + interval '1 hour', c + interval '8 hours', false, i % 17 = 0, i % 23 = 0,
        CASE WHEN i % 17 = 0 OR i % 23 = 0 THEN c + interval '8 hours' END,
        '[]'::jsonb, '{{}}'::jsonb, c, c
    FROM (SELECT i, now() - interval '1 second' * ((i::bigint * 7919) % 63072000) AS c
          FROM generate_series(1, {N}) AS i) s
    """
    with connection.cursor() as cur:
        cur.execute(sql)
        cur.execute("ANALYZE tickets_ticket")
    return time.perf_counter() - start


def measure(client, url) -> list[float]:
    times = []
    for k in range(WARM + REQS):
        elapsed, response = timed(client.get, url)
        assert response.status_code == 200 and b"portal-dashboard" in response.content, (url, response.status_code)
        if k >= WARM:
            times.append(elapsed * 1000)
    return times


def queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return len(ctx.captured_queries)


def main():
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from apps.core.choices import OrgKind, Role
    from apps.dashboard.models import TenantSummary
    from apps.dashboard.services import health_recompute, summary_refresh
    from apps.tenants.models import Membership, Organization

    User = get_user_model()
    cleanup(User, Organization)
    tenants = [Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}{k:02d}", name=f"Bench {k}") for k in range(TENANTS)]
    root = User.objects.create(username=f"{PREFIX}root", is_staff=True, is_superuser=True)
    tadmin = User.objects.create(username=f"{PREFIX}admin", is_staff=True)
    Membership.objects.create(user=tadmin, organization=tenants[3], role=Role.ADMIN)
    try:
        seed_s = seed([t.pk for t in tenants])
        refresh_s = 0.0
        for t in tenants:
            refresh_s += timed(summary_refresh, tenant=t)[0]
        health_s = sum(timed(health_recompute, tenant=t)[0] for t in tenants)
        url = reverse("admin:index")
        web = Client()
        web.force_login(root)
        plat = measure(web, url)
        plat_q = queries(web, url)
        open_total = sum(s.data["tickets_open"]["total"] for s in TenantSummary.objects.filter(tenant__in=tenants))
        web_t = Client()
        web_t.force_login(tadmin)
        ten = measure(web_t, url)
        ten_q = queries(web_t, url)
        peer = peer_figures()
        p50 = percentile(plat, 50)
        peer_list = peer["list_page"] + peer["list_json"]
        line(
            "dashboard_admin_index",
            tickets=N, tenants=TENANTS, open_tickets=open_total, seed_s=seed_s,
            refresh_all_s=refresh_s, refresh_per_tenant_ms=1000 * refresh_s / TENANTS, health_all_s=health_s,
            platform_p50_ms=p50, platform_p95_ms=percentile(plat, 95), platform_queries=plat_q,
            tenant_p50_ms=percentile(ten, 50), tenant_p95_ms=percentile(ten, 95), tenant_queries=ten_q,
            peer_source="RESULTS.md§4(helpdesk-2.6.1,not-rerun)",
            peer_default_list_page_plus_json_p50_ms=peer_list, peer_admin_changelist_p50_ms=peer["admin"],
            speedup_vs_peer_list=peer_list / p50, speedup_vs_peer_admin=peer["admin"] / p50,
        )
    finally:
        cleanup(User, Organization)
        connection.close()


def cleanup(User, Organization):
    from django.db import connection

    from apps.core.models import Event
    from apps.dashboard.models import AccountHealth, KpiCheckpoint, KpiTarget, TenantSummary
    from apps.tenants.models import Membership

    ids = list(Organization.objects.filter(slug__startswith=PREFIX).values_list("pk", flat=True))
    if ids:
        for model in (AccountHealth, KpiCheckpoint, KpiTarget, TenantSummary):
            model.objects.filter(tenant_id__in=ids).delete()
        with connection.cursor() as cur:
            cur.execute("DELETE FROM tickets_ticketevent WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id = ANY(%s))", [ids])
            cur.execute("DELETE FROM tickets_ticket WHERE tenant_id = ANY(%s)", [ids])
        Event.objects.filter(tenant_id__in=ids).delete()
        Membership.objects.filter(organization_id__in=ids).delete()
        Organization.objects.filter(pk__in=ids).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
