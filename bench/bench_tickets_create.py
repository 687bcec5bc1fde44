#!/usr/bin/env python
"""Ticket creation through the API under load: 8 concurrent clients (customers of one tenant,
the helpdesk's common path customer → tenant) against gunicorn + PostgreSQL on loopback,
with SLA policy, auto-assignment and outbox events on. Every 201 must be a row.
Peer: django-helpdesk's API create, 21.9 ms p50 sequential (RESULTS.md §4, not re-run).
"""

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LiveServer, line, percentile, setup_django

N = int(os.environ.get("BENCH_TICKET_CREATES", "3000"))
C = int(os.environ.get("BENCH_TICKET_CLIENTS", "8"))
PEER_P50_MS = 21.9  # RESULTS.md §4: "create ticket, API", django-helpdesk 2.6.1, one sequential client


async def load(url: str, tokens: list[str], n: int):
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
            body = {"subject": f"Bench ticket {i}", "message": "The router blinks red.", "priority": ["low", "normal", "high"][i % 3]}
            t = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            latencies.append((time.perf_counter() - t) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=C)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(k, session) for k in range(C)))
        return time.perf_counter() - start, latencies, statuses


def main() -> None:
    setup_django()
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.core.choices import OrgKind, Role
    from apps.tenants.models import Membership, Organization
    from apps.tickets.models import Ticket

    User = get_user_model()
    tag = uuid.uuid4().hex[:6]
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"bench-tc-{tag}", name="Bench create")
    customer_org = Organization.objects.create(kind=OrgKind.CUSTOMER, slug=f"bench-tc-{tag}-c", name="Bench customer", parent=tenant)
    users = []
    for k in range(C):
        u = User.objects.create(username=f"bench-tc-{tag}-c{k}")
        Membership.objects.create(user=u, organization=customer_org, role=Role.CUSTOMER)
        users.append(u)
    for k in range(3):
        u = User.objects.create(username=f"bench-tc-{tag}-a{k}", is_staff=True)
        Membership.objects.create(user=u, organization=tenant, role=Role.SUPPORT_AGENT)
        users.append(u)
    tokens = [str(RefreshToken.for_user(u).access_token) for u in users[:C]]
    try:
        with LiveServer(workers=3) as server:
            url = f"{server.url}/api/v1/tickets/"
            asyncio.run(load(url, tokens, C * 3))  # warm-up: imports, connections
            warm = Ticket.objects.filter(tenant=tenant).count()
            seconds, lat, statuses = asyncio.run(load(url, tokens, N))
        created = Ticket.objects.filter(tenant=tenant).count() - warm
        p50 = percentile(lat, 50)
        line(
            "tickets_create",
            tickets_per_s=N / seconds, n=N, clients=C, p50_ms=p50, p95_ms=percentile(lat, 95),
            ok=statuses.get(201, 0), errors=N - statuses.get(201, 0), rows_created=created, all_rows_accounted=created == statuses.get(201, 0),
            peer_helpdesk_create_p50_ms=PEER_P50_MS, peer_source="RESULTS.md§4", p50_vs_peer=p50 / PEER_P50_MS,
        )
    finally:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("DELETE FROM tickets_ticketevent WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id=%s)", [tenant.pk])
            cur.execute("DELETE FROM tickets_ticketmessage WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id=%s)", [tenant.pk])
            cur.execute("DELETE FROM tickets_ticket WHERE tenant_id=%s", [tenant.pk])
            cur.execute("DELETE FROM core_event WHERE tenant_id=%s", [tenant.pk])
        for model in ("tickets.TicketAgent", "tickets.SlaPolicy", "tickets.BusinessCalendar"):
            from django.apps import apps

            apps.get_model(model).objects.filter(tenant=tenant).delete()
        Membership.objects.filter(organization__in=[tenant, customer_org]).delete()
        customer_org.delete()
        tenant.delete()
        User.objects.filter(username__startswith=f"bench-tc-{tag}").delete()


if __name__ == "__main__":
    main()
