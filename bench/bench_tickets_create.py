#!/usr/bin/env python
"""Ticket creation through the API under load: 8 concurrent clients (customers of one tenant,
the helpdesk's common path customer → tenant) against gunicorn (the deployment's settings,
config/gunicorn.conf.py) + PostgreSQL on loopback, with SLA policies on a business calendar and
outbox events on. Auto-assignment follows BENCH_TICKET_ASSIGNMENT (off, the default of a tenant;
round_robin or least_loaded: every create then takes the tenant's assignment lock until commit).
Every 201 must be a row with its ticket.created event. These JSON creates with a Bearer token
take the ordinary DRF route (TicketViewSet; the lean WSGI route is gone, issue 16); the
client keeps its 8 connections alive (gthread workers), sends each request separately and
counts every status.

Besides throughput and latency the line splits the CPU time spent per ticket between the client,
gunicorn and the PostgreSQL backends (`cpu_ms_*`); `cpu_ceiling_per_s` = 2 cores / that total is
the rate the two cores could reach if nothing else ran and no one ever waited. `floor_cpu_ms_400`
is the same split summed for requests refused with a 400 (empty body) after authentication,
throttling, the membership lookup and validation: what any create costs before its own work, so
`floor_ceiling_per_s` bounds every possible create path of this stack on these cores.
Peer: django-helpdesk's API create, 21.9 ms p50 sequential (RESULTS.md §4, not re-run).
"""

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, LiveServer, PostgresCpu, line, percentile, setup_django

N = int(os.environ.get("BENCH_TICKET_CREATES", "3000"))
C = int(os.environ.get("BENCH_TICKET_CLIENTS", "8"))
ASSIGNMENT = os.environ.get("BENCH_TICKET_ASSIGNMENT", "off")
CORES = os.cpu_count() or 2
PEER_P50_MS = 21.9  # RESULTS.md §4: "create ticket, API", django-helpdesk 2.6.1, one sequential client


def _ticket(i: int) -> dict:
    return {"subject": f"Bench ticket {i}", "message": "The router blinks red.", "priority": ["low", "normal", "high"][i % 3]}


def _empty(i: int) -> dict:
    return {}  # a 400: authenticated, throttled, scoped and validated, then refused before any work


async def load(url: str, tokens: list[str], n: int, body=_ticket):
    import aiohttp

    latencies, statuses = [], {}
    queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(k: int, session):
        headers = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t = time.perf_counter()
            async with session.post(url, json=body(i), headers=headers) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            latencies.append((time.perf_counter() - t) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=C)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(k, session) for k in range(C)))
        return time.perf_counter() - start, latencies, statuses


def _setup(tag: str):
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.core.choices import OrgKind, Role
    from apps.tenants.models import Membership, Organization
    from apps.tickets.models import BusinessCalendar, SlaPolicy

    User = get_user_model()
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"bench-tc-{tag}", name="Bench create", timezone="Europe/Berlin",
                                         settings={"tickets": {"assignment": ASSIGNMENT}})
    customer_org = Organization.objects.create(kind=OrgKind.CUSTOMER, slug=f"bench-tc-{tag}-c", name="Bench customer", parent=tenant)
    users = []
    for k in range(C):
        u = User.objects.create(username=f"bench-tc-{tag}-c{k}")
        Membership.objects.create(user=u, organization=customer_org, role=Role.CUSTOMER)
        users.append(u)
    for k in range(3):
        u = User.objects.create(username=f"bench-tc-{tag}-a{k}", is_staff=True)
        Membership.objects.create(user=u, organization=tenant, role=Role.SUPPORT_AGENT)
    office = BusinessCalendar.objects.create(tenant=tenant, name="Office", is_default=True, holidays=["2026-12-25"],
                                             working_hours={d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    for priority, first, resolution in (("low", 480, 4800), ("normal", 240, 1440), ("high", 60, 480)):
        SlaPolicy.objects.create(tenant=tenant, name=f"Bench {priority}", priority=priority, calendar=office,
                                 first_response_minutes=first, resolution_minutes=resolution)
    return tenant, customer_org, [str(RefreshToken.for_user(u).access_token) for u in users]


def main() -> None:
    setup_django()
    from django.db.models import Count

    from apps.core.models import Event
    from apps.tickets.models import Ticket

    tag = uuid.uuid4().hex[:6]
    tenant, customer_org, tokens = _setup(tag)
    database = BENCH_DB.rsplit("/", 1)[1]
    try:
        with LiveServer() as server:
            url = f"{server.url}/api/v1/tickets/"
            asyncio.run(load(url, tokens, C * 3))  # warm-up: imports, connections
            warm = Ticket.objects.filter(tenant=tenant).count()

            def measured(n, body):
                """Load with CPU seconds of (client, gunicorn, PostgreSQL) per request."""
                client0, server0 = time.process_time(), server.cpu_seconds()
                with PostgresCpu(database) as pg:
                    result = asyncio.run(load(url, tokens, n, body=body))
                return result, ((time.process_time() - client0) / n, (server.cpu_seconds() - server0) / n, pg.seconds / n)

            (seconds, lat, statuses), (client_s, server_s, pg_s) = measured(N, _ticket)
            # the floor: what the same requests cost when refused (400) before the ticket work
            (_, _, refused), floor = measured(N // 3, _empty)
            floor_ms = sum(floor) * 1000
        created = Ticket.objects.filter(tenant=tenant).count() - warm
        events = Event.objects.filter(tenant=tenant, name="ticket.created").count() - warm
        per_agent = sorted(Ticket.objects.filter(tenant=tenant).values("assignee_id").annotate(n=Count("id")).values_list("n", flat=True))
        p50 = percentile(lat, 50)
        total_ms = (client_s + server_s + pg_s) * 1000
        line(
            "tickets_create",
            tickets_per_s=N / seconds, n=N, clients=C, p50_ms=p50, p95_ms=percentile(lat, 95),
            ok=statuses.get(201, 0), errors=N - statuses.get(201, 0), rows_created=created, all_rows_accounted=created == statuses.get(201, 0) == events,
            assignment=ASSIGNMENT, assigned_spread=(per_agent[-1] - per_agent[0]) if ASSIGNMENT != "off" else "-",
            cpu_ms_client=client_s * 1000, cpu_ms_gunicorn=server_s * 1000, cpu_ms_postgres=pg_s * 1000,
            cpu_ms_total=total_ms, cpu_ceiling_per_s=CORES * 1000 / total_ms,
            floor_cpu_ms_400=floor_ms if refused.get(400) == N // 3 else "failed", floor_ceiling_per_s=CORES * 1000 / floor_ms,
            peer_helpdesk_create_p50_ms=PEER_P50_MS, peer_source="RESULTS.md§4", p50_vs_peer=p50 / PEER_P50_MS,
        )
    finally:
        _cleanup(tenant, customer_org, tag)


def _cleanup(tenant, customer_org, tag: str) -> None:
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.tenants.models import Membership

    with connection.cursor() as cur:
        cur.execute("DELETE FROM tickets_ticketevent WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id=%s)", [tenant.pk])
        cur.execute("DELETE FROM tickets_ticketmessage WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id=%s)", [tenant.pk])
        cur.execute("DELETE FROM tickets_ticket WHERE tenant_id=%s", [tenant.pk])
        cur.execute("DELETE FROM core_event WHERE tenant_id=%s", [tenant.pk])
    for model in ("tickets.TicketAgent", "tickets.SlaPolicy", "tickets.BusinessCalendar"):
        apps.get_model(model).objects.filter(tenant=tenant).delete()
    Membership.objects.filter(organization__in=[tenant, customer_org]).delete()
    customer_org.delete()
    tenant.delete()
    get_user_model().objects.filter(username__startswith=f"bench-tc-{tag}").delete()


if __name__ == "__main__":
    main()
