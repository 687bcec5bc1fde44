"""Tickets at 1,000,000 rows (50 tenants), compared with django-helpdesk 2.6.1 at 1M tickets.

Seeds our tickets with one INSERT … SELECT generate_series into dedicated bench tenants
(`bench-tck-*`), then measures through Django's test client (in-process, same code path as a
request): the API list of one tenant filtered by status (page of 50, JWT auth), and the admin
changelist (platform superuser, all 1M, page of 50), 5 warm-ups + 50 timed requests each; then
`sla_sweep` over the open tickets. The peer's figures are read from
../shared/bench/peers/RESULTS.md §4 (running the peer takes ~11 min); they are not re-measured.
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
TENANTS = 50
REQS, WARM = 50, 5
PREFIX = "bench-tck-"


def peer_figures() -> dict:
    """p50s of django-helpdesk at 1M from RESULTS.md §4 (bold numbers of the table rows)."""
    return {
        "api": helpdesk_p50("DRF API list, `?status=5`"),
        "datatables": helpdesk_p50("its datatables JSON, page 1, 25 rows"),
        "admin": helpdesk_p50("Django admin changelist, page 1"),
    }


def seed(tenant_ids: list[int], agent_ids: list[int]) -> float:
    from django.db import connection

    start = time.perf_counter()
    tids = "(ARRAY[" + ",".join(map(str, tenant_ids)) + "])"
    aids = "(ARRAY[" + ",".join(map(str, agent_ids)) + "])"
    sql = f"""
    INSERT INTO tickets_ticket (tenant_id, number, subject, status, priority, origin_type, target_type,
        assignee_id, escalation_level, sla_started_at, sla_paused_seconds, first_response_due_at, resolution_due_at,
        sla_warn_at, first_responded_at, sla_at_risk, first_response_breached, resolution_breached,
        tags, metadata, created_at, updated_at)
    SELECT {tids}[1 + i % {TENANTS}], 'TCK-B' || lpad(i::text, 7, '0'), 'Bench ticket ' || i,
        (ARRAY['open','open','open','open','in_progress','in_progress','waiting','resolved','resolved','resolved',
               'resolved','resolved','closed','closed','closed','closed','closed','closed','closed','closed'])[1 + (i / 50) % 20],
        (ARRAY['low','normal','normal','high','urgent','critical'])[1 + (i / 50) % 6], 'customer', 'tenant',
        CASE WHEN i % 10 < 7 THEN {aids}[1 + i % {len(agent_ids)}] END, 0,
        c, 0,
        CASE WHEN i % 1000 = 0 THEN now() - interval '5 minutes' ELSE now() + interval '1 day' * (1 + i % 30) END,
        CASE WHEN i % 1000 = 0 THEN now() - interval '1 minute' ELSE now() + interval '1 day' * (2 + i % 30) END,
        CASE WHEN i % 1000 = 0 THEN now() - interval '10 minutes' ELSE now() + interval '1 day' * (1 + i % 30) END,
        CASE WHEN i % 2 = 0 THEN c + interval '1 hour' END, false, false, false,
        '[]'::jsonb, '{{}}'::jsonb, c, c
    FROM (SELECT i, now() - interval '1 second' * ((i::bigint * 7919) % 63072000) AS c
          FROM generate_series(1, {N}) AS i) s
    """
    with connection.cursor() as cur:
        cur.execute(sql)
        # production tables are autovacuumed; after a bulk load that is what sets the visibility
        # map, so counts become index-only scans (the peer ran ANALYZE only: RESULTS.md §4)
        cur.execute("VACUUM ANALYZE tickets_ticket")
    return time.perf_counter() - start


def measure(client, url, params=None) -> list[float]:
    times = []
    for k in range(WARM + REQS):
        elapsed, response = timed(client.get, url, params or {})
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        if k >= WARM:
            times.append(elapsed * 1000)
    return times


def queries(client, url, params=None) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        client.get(url, params or {})
    return len(ctx.captured_queries)


def main():
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.core.choices import OrgKind, Role
    from apps.core.models import Event
    from apps.tenants.models import Membership, Organization
    from apps.tickets.models import Ticket
    from apps.tickets.services import sla_sweep

    User = get_user_model()
    cleanup(User, Organization, Event)
    tenants = [Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}{k:02d}", name=f"Bench {k}") for k in range(TENANTS)]
    agents = []
    for k in range(10):
        u = User.objects.create(username=f"{PREFIX}agent{k}", is_staff=True)
        Membership.objects.create(user=u, organization=tenants[k], role=Role.SUPPORT_AGENT)
        agents.append(u)
    admin = User.objects.create(username=f"{PREFIX}root", is_staff=True, is_superuser=True)
    try:
        seed_s = seed([t.pk for t in tenants], [a.pk for a in agents])
        tenant = tenants[7]
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(agents[7]).access_token}")
        api_url, api_params = reverse("ticket-list"), {"status": "open", "page_size": 50}
        matching = Ticket.objects.filter(tenant=tenant, status="open").count()
        api_t = measure(api, api_url, api_params)
        api_q = queries(api, api_url, api_params)
        web = Client()
        web.force_login(admin)
        admin_url = reverse("admin:tickets_ticket_changelist")
        admin_t = measure(web, admin_url)
        admin_q = queries(web, admin_url)
        admin_f = measure(web, admin_url, {"tenant__id__exact": tenant.pk, "status__exact": "open"})
        # the SQL passes, timeline and outbox rows are timed; handing the events to Celery is not
        # (eager mode here would run every handler inline, which a worker does in production)
        import apps.core.events as core_events

        core_events.enqueue_dispatch = lambda event_id: None
        sweep_s, counts = timed(sla_sweep)
        peer = peer_figures()
        a50, a95 = percentile(api_t, 50), percentile(api_t, 95)
        d50, d95 = percentile(admin_t, 50), percentile(admin_t, 95)
        line(
            "tickets_1m",
            tickets=N, seed_s=seed_s,
            api_list_p50_ms=a50, api_list_p95_ms=a95, api_rows_matching=matching, api_queries=api_q,
            admin_p50_ms=d50, admin_p95_ms=d95, admin_queries=admin_q,
            admin_tenant_open_p50_ms=percentile(admin_f, 50), admin_tenant_open_p95_ms=percentile(admin_f, 95),
            sweep_s_excl_enqueue=sweep_s, sweep_flagged=sum(counts.values()),
            peer_source="RESULTS.md§4(helpdesk-2.6.1,not-rerun)",
            peer_api_status_p50_ms=peer["api"], peer_datatables_queue_open_p50_ms=peer["datatables"], peer_admin_p50_ms=peer["admin"],
            speedup_api_vs_peer_api=peer["api"] / a50, speedup_api_vs_peer_datatables=peer["datatables"] / a50,
            speedup_admin_vs_peer_admin=peer["admin"] / d50,
        )
    finally:
        cleanup(User, Organization, Event)
        connection.close()


def cleanup(User, Organization, Event):
    from django.db import connection

    ids = list(Organization.objects.filter(slug__startswith=PREFIX).values_list("pk", flat=True))
    if ids:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM tickets_ticketevent WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id = ANY(%s))", [ids])
            cur.execute("DELETE FROM tickets_ticket WHERE tenant_id = ANY(%s)", [ids])
        Event.objects.filter(tenant_id__in=ids).delete()
        from apps.tenants.models import Membership

        Membership.objects.filter(organization_id__in=ids).delete()
        Organization.objects.filter(pk__in=ids).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
