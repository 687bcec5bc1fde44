"""Tickets at 1,000,000 rows on two shapes of data (issue 24), beside django-helpdesk 2.6.1 at 1M.

- `skewed`: shaped like a helpdesk that grew: one tenant holds 70 % of the tickets (the rest spread
  over 49), 85 % resolved or closed, priorities normal/high/urgent/critical 60/25/12/3 %, created
  over three years, one message per ticket, a 900-match phrase (`fw-0002`) and a one-match one;
- `even`: 50 equal tenants of 20k (the old bench's shape), with the same subjects and messages.

Data: one `INSERT … SELECT generate_series` per table into dedicated bench tenants (`bench-tck-*`),
with the two tables' secondary indexes dropped for the load and re-created from their own
definitions afterwards (the fastest honest path: the indexes end identical to the migrations'),
then `VACUUM ANALYZE` (`BENCH_TICKETS_ANALYZE_ONLY=1`: `ANALYZE` only, as the peer ran;
`BENCH_TICKETS_ANALYZE_ONLY=both`: measured after `ANALYZE` only, then `VACUUM ANALYZE` and measured
again on the same rows — one load of ~4 minutes serves both).
Measured through Django's test client (in-process, the request's code path without a socket):
5 warm-ups + 50 timed requests per case, p50/p95 in ms, and the SQL queries of one request.
The API cases run as a support agent of the measured tenant (the big one when skewed), the admin
ones as that tenant's admin. Goals: API ≤ 50 ms p95, admin ≤ 150 ms p95, queries constant.
django-helpdesk's figures are read from ../shared/bench/peers/RESULTS.md §4 (not re-run).

Run it against a database of its own: `BENCH_DATABASE_URL=postgres://…/opsportal_tixbench`
(created when missing). `BENCH_TICKETS` (rows, default 1,000,000), `BENCH_TICKETS_SHAPES`
(`skewed,even`). Everything created is deleted at the end (`BENCH_TICKETS_KEEP=1`: left, for a
throwaway database).
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
SHAPES = [s for s in os.environ.get("BENCH_TICKETS_SHAPES", "skewed,even").split(",") if s]
# the statistics each measurement runs on, in order: "analyze" (ANALYZE only) and/or "vacuum" (VACUUM ANALYZE)
STATS = {"1": ["analyze"], "both": ["analyze", "vacuum"]}.get(os.environ.get("BENCH_TICKETS_ANALYZE_ONLY", ""), ["vacuum"])
STATS_LABEL = {"analyze": "ANALYZE only", "vacuum": "VACUUM ANALYZE"}
KEEP = os.environ.get("BENCH_TICKETS_KEEP") == "1"
TENANTS = 50
REQS, WARM = int(os.environ.get("BENCH_TICKETS_REQS", "50")), 5
PREFIX = "bench-tck-"
API_GOAL, ADMIN_GOAL = 50.0, 150.0
TABLES = ("tickets_ticket", "tickets_ticketmessage")
ONE_MATCH = "kangaroo printer"
MANY_MATCH = "fw-0002"  # 1 in 1,111 tickets: 900 at 1M
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def peer_figures() -> dict:
    """p50s of django-helpdesk at 1M from RESULTS.md §4 (bold numbers of the table rows)."""
    return {
        "api": helpdesk_p50("DRF API list, `?status=5`"),
        "datatables": helpdesk_p50("its datatables JSON, page 1, 25 rows"),
        "admin": helpdesk_p50("Django admin changelist, page 1"),
        "admin_filtered": helpdesk_p50("Django admin changelist filtered by queue"),
    }


def _number_sql() -> str:
    """'TCK-' + 8 characters of the ticket alphabet, distinct for each i (i·7919 written in base 30)."""
    digits = [f"substr('{ALPHABET}', 1 + ((i::bigint * 7919) / {30**k} % 30)::int, 1)" for k in range(7, -1, -1)]
    return "'TCK-' || " + " || ".join(digits)


SUBJECTS = [
    "VPN drops after the firmware update",
    "Cannot log in to the portal",
    "Backup job failed overnight",
    "Invoice shows the wrong VAT",
    "Disk almost full on the database host",
    "Certificate expires soon",
    "Slow dashboard in the afternoon",
    "Printer queue stuck",
    "New user account request",
    "DNS record missing for the mail server",
    "Alert storm from the load balancer",
    "Password reset link expired",
]


def _subject_sql(one_match_at: int) -> str:
    arr = "(ARRAY[" + ",".join("'" + s + "'" for s in SUBJECTS) + "])"
    return (
        f"CASE WHEN i = {one_match_at} THEN 'Kangaroo printer quorum jammed' "
        f"ELSE {arr}[1 + i % {len(SUBJECTS)}] || ' (host fw-' || lpad((i % 1111)::text, 4, '0') || ')' END"
    )


def seed(shape: str, tenant_ids: list[int], agent_ids: list[int]) -> dict:
    """Load N tickets and one message each; returns the seconds each step took."""
    from django.db import connection

    tids = "(ARRAY[" + ",".join(map(str, tenant_ids)) + "])"
    aids = "(ARRAY[" + ",".join(map(str, agent_ids)) + "])"
    if shape == "skewed":
        # r1 tenant, r2 status, r3 priority, r4 age (three years), r5 SLA flags
        tenant = f"CASE WHEN r1 < 0.70 THEN {tids}[1] ELSE {tids}[2 + i % {TENANTS - 1}] END"
        status = (
            "CASE WHEN r2 < 0.06 THEN 'open' WHEN r2 < 0.10 THEN 'in_progress' WHEN r2 < 0.13 THEN 'waiting' "
            "WHEN r2 < 0.15 THEN 'escalated' WHEN r2 < 0.40 THEN 'resolved' ELSE 'closed' END"
        )
        priority = "CASE WHEN r3 < 0.60 THEN 'normal' WHEN r3 < 0.85 THEN 'high' WHEN r3 < 0.97 THEN 'urgent' ELSE 'critical' END"
        assignee = f"CASE WHEN r1 < 0.70 AND r5 < 0.7 THEN {aids}[1 + i % {len(agent_ids)}] END"
        created = "now() - interval '3 years' * r4"
    else:
        tenant = f"{tids}[1 + i % {TENANTS}]"
        status = (
            "(ARRAY['open','open','open','open','in_progress','in_progress','waiting','resolved','resolved','resolved',"
            "'resolved','resolved','closed','closed','closed','closed','closed','closed','closed','closed'])[1 + (i / 50) % 20]"
        )
        priority = "(ARRAY['low','normal','normal','high','urgent','critical'])[1 + (i / 50) % 6]"
        assignee = f"CASE WHEN i % 10 < 7 THEN {aids}[1 + i % {len(agent_ids)}] END"
        created = "now() - interval '1 second' * ((i::bigint * 7919) % 63072000)"
    done = "status IN ('resolved', 'closed')"
    tickets = f"""
    INSERT INTO tickets_ticket (tenant_id, number, subject, status, priority, origin_type, target_type,
        assignee_id, escalation_level, sla_started_at, sla_paused_seconds, first_response_due_at, resolution_due_at,
        sla_warn_at, first_responded_at, resolved_at, closed_at, sla_at_risk, first_response_breached, resolution_breached,
        tags, metadata, created_at, updated_at)
    SELECT tenant, number, subject, status, priority, 'tenant', 'tenant', assignee, 0, c, 0,
        c + interval '4 hours', c + interval '3 days', c + interval '2 days',
        CASE WHEN {done} OR r5 < 0.5 THEN c + interval '1 hour' END,
        CASE WHEN {done} THEN c + interval '2 days' END, CASE WHEN status = 'closed' THEN c + interval '4 days' END,
        NOT ({done}) AND r5 < 0.04, r5 > 0.97, r5 > 0.95, '[]'::jsonb, '{{}}'::jsonb, c, c
    FROM (SELECT i, {tenant} AS tenant, {_number_sql()} AS number, {_subject_sql(N // 2)} AS subject,
                 {status} AS status, {priority} AS priority, {assignee} AS assignee, {created} AS c, r5
          FROM (SELECT i, random() r1, random() r2, random() r3, random() r4, random() r5
                FROM generate_series(1, {N}) AS i) g) s
    """
    messages = f"""
    INSERT INTO tickets_ticketmessage (ticket_id, author_id, author_type, body, is_internal, created_at)
    SELECT id, NULL, 'tenant', 'Hello, ' || subject || '. It started this morning; we tried restarting the service and clearing '
           'the cache, with no change. Ticket ' || number || ', please advise.', false, created_at
    FROM tickets_ticket WHERE tenant_id = ANY({tids})
    """
    took = {}
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.24)")
        cur.execute("SET maintenance_work_mem = '256MB'")
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]))",
            [list(TABLES), list(TABLES)],
        )
        indexes = cur.fetchall()
        start = time.perf_counter()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        try:
            cur.execute(tickets)
            took["tickets_s"] = time.perf_counter() - start
            start = time.perf_counter()
            cur.execute(messages)
            took["messages_s"] = time.perf_counter() - start
        finally:
            start = time.perf_counter()
            for _, definition in indexes:
                cur.execute(definition)
            took["indexes_s"] = time.perf_counter() - start
    took["vacuum_s"] = analyze(STATS[0])
    return took


def analyze(stats: str) -> float:
    """`ANALYZE` ("analyze") or `VACUUM ANALYZE` ("vacuum") the two tables; the seconds it took."""
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cur:
        for table in TABLES:
            cur.execute(f"{'ANALYZE' if stats == 'analyze' else 'VACUUM ANALYZE'} {table}")
    return time.perf_counter() - start


def measure(client, url, params=None) -> tuple[float, float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for k in range(WARM + REQS):
        elapsed, response = timed(client.get, url, params or {})
        assert response.status_code == 200, (url, params, response.status_code, response.content[:300])
        if k >= WARM:
            times.append(elapsed * 1000)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    return percentile(times, 50), percentile(times, 95), len(ctx.captured_queries), response


def last_page_cursor(tenant_id: int) -> str:
    """The cursor a client holds after walking to the last page of the default order: the key of
    the row just before the last 50 (what the previous page's `next` link carries)."""
    from django.core import signing

    from apps.core.api.pagination import CURSOR_SALT
    from apps.tickets.models import Ticket

    qs = Ticket.objects.filter(tenant_id=tenant_id).order_by("-created_at", "-id")
    total = qs.count()
    created, pk = qs.values_list("created_at", "id")[total - 51]
    return signing.dumps(
        {"o": ["-created_at", "-id"], "v": [created.isoformat(), pk], "r": False}, salt=CURSOR_SALT, compress=True
    )


def run_shape(shape: str, peer: dict) -> tuple[list[dict], int]:
    from django.contrib.auth import get_user_model

    from apps.core.choices import OrgKind, Role
    from apps.core.models import Event
    from apps.tenants.models import Membership, Organization
    from apps.tickets.models import Ticket

    User = get_user_model()
    cleanup(User, Organization, Event)
    tenants = [
        Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}{k:02d}", name=f"Bench {k}") for k in range(TENANTS)
    ]
    home = tenants[0] if shape == "skewed" else tenants[7]
    agents = []
    for k in range(10):
        u = User.objects.create(username=f"{PREFIX}agent{k}", is_staff=True)
        Membership.objects.create(user=u, organization=home if shape == "skewed" else tenants[k], role=Role.SUPPORT_AGENT)
        agents.append(u)
    boss = User.objects.create(username=f"{PREFIX}admin", is_staff=True)
    Membership.objects.create(user=boss, organization=home, role=Role.ADMIN)
    agent = agents[0] if shape == "skewed" else agents[7]
    rows = []
    try:
        took = seed(shape, [t.pk for t in tenants], [a.pk for a in agents])
        size = Ticket.objects.filter(tenant=home).count()
        for k, stats in enumerate(STATS):
            if k:  # the same rows, now vacuumed too
                took = {"vacuum_s": analyze(stats)}
            measured = measure_all(shape, stats, home, agent, boss, size)
            for row in measured:
                row["peer"] = _peer_for(row, peer)
            line(
                f"tickets_1m_{shape}" + ("_analyze_only" if stats == "analyze" else ""),
                tickets=N,
                tenant_rows=size,
                **took,
                api_worst_p95_ms=max(r["p95"] for r in measured if r["side"] == "API"),
                admin_worst_p95_ms=max(r["p95"] for r in measured if r["side"] == "admin"),
                over_goal=sum(r["p95"] > r["goal"] for r in measured),
            )
            rows += measured
        return rows, size
    finally:
        if not KEEP:
            cleanup(User, Organization, Event)


def measure_all(shape: str, stats: str, home, agent, boss, size: int) -> list[dict]:
    """Every API and admin case of one shape, as rows of the table."""
    from django.test import Client
    from django.urls import reverse
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.tickets.models import Ticket
    from apps.tickets.search import ALLOWED_ORDERINGS

    sample = Ticket.objects.filter(tenant=home).order_by("-created_at", "-id")[size // 3]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(agent).access_token}")
    url = reverse("ticket-list")
    cases = [
        ("default list", {}),
        ("open", {"status": "open"}),
        ("critical + open", {"status": "open", "priority": "critical"}),
        ("number search (lower case)", {"search": sample.number.lower()}),
        ("text search, one match", {"search": ONE_MATCH}),
        (f"text search, ~900 matches ({MANY_MATCH})", {"search": MANY_MATCH}),
        *[(f"ordering={o}", {"ordering": o}) for o in ALLOWED_ORDERINGS],
        ("last page by cursor", {"cursor": last_page_cursor(home.pk)}),
        ("page 2 by ?page= (count capped)", {"page": 2}),
    ]
    base = {"shape": shape, "stats": stats}
    rows = []
    for name, params in cases:
        p50, p95, q, response = measure(api, url, params)
        body = response.json()
        if name == "last page by cursor":
            assert body["next"] is None and len(body["results"]) == 50, body.get("next")
        rows.append({**base, "side": "API", "case": name, "p50": p50, "p95": p95, "queries": q, "goal": API_GOAL})
    web = Client()
    web.force_login(boss)
    admin_url = reverse("admin:tickets_ticket_changelist")
    admin_cases = [
        ("admin changelist", admin_url, {}),
        ("admin changelist, open", admin_url, {"status__exact": "open"}),
        ("admin search, number", admin_url, {"q": sample.number.lower()}),
        (f"admin search, ~900 matches ({MANY_MATCH})", admin_url, {"q": MANY_MATCH}),
        ("admin change page", reverse("admin:tickets_ticket_change", args=[sample.pk]), {}),
    ]
    for name, u, params in admin_cases:
        p50, p95, q, _ = measure(web, u, params)
        rows.append({**base, "side": "admin", "case": name, "p50": p50, "p95": p95, "queries": q, "goal": ADMIN_GOAL})
    return rows


def _peer_for(row: dict, peer: dict) -> str:
    if row["side"] == "API" and row["case"] in ("open", "critical + open"):
        return f"{peer['api']:,.0f} (DRF `?status=5`); {peer['datatables']:,.0f} (datatables, 1 queue open)"
    if row["case"] == "admin changelist":
        return f"{peer['admin']:,.0f}"
    if row["case"] == "admin changelist, open":
        return f"{peer['admin_filtered']:,.0f} (by queue)"
    return ""


def table(rows: list[dict], sizes: dict) -> str:
    out = [
        f"{N:,} tickets; the measured tenant holds {', '.join(f'{s}: {n:,}' for s, n in sizes.items())}; "
        f"{' then '.join(STATS_LABEL[s] for s in STATS)}; {REQS} requests per case after {WARM} warm-ups.",
        "",
        "| shape | stats | case | p50 ms | p95 ms | goal p95 | queries | django-helpdesk p50 ms (RESULTS.md §4) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = "" if r["p95"] <= r["goal"] else " **over**"
        out.append(
            f"| {r['shape']} | {STATS_LABEL[r['stats']]} | {r['side']}: {r['case']} | {r['p50']:.1f} | {r['p95']:.1f}{mark} | {r['goal']:.0f} | {r['queries']} | {r['peer']} |"
        )
    return "\n".join(out)


def main():
    setup_django()
    from django.db import connection

    peer = peer_figures()
    rows, sizes = [], {}
    try:
        for shape in SHAPES:
            shape_rows, sizes[shape] = run_shape(shape, peer)
            rows += shape_rows
            if len(SHAPES) > 1:  # each shape's table as soon as it is measured: a stopped run keeps it
                print(table(shape_rows, {shape: sizes[shape]}), flush=True)
    finally:
        connection.close()
    print(table(rows, sizes))


def cleanup(User, Organization, Event):
    from django.db import connection

    ids = list(Organization.objects.filter(slug__startswith=PREFIX).values_list("pk", flat=True))
    if ids:
        with connection.cursor() as cur:
            for table_name in ("tickets_ticketmessage", "tickets_ticketevent", "tickets_ticketattachment"):
                cur.execute(
                    f"DELETE FROM {table_name} WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE tenant_id = ANY(%s))",
                    [ids],
                )
            cur.execute("DELETE FROM tickets_ticket WHERE tenant_id = ANY(%s)", [ids])
        Event.objects.filter(tenant_id__in=ids).delete()
        from apps.tenants.models import Membership

        Membership.objects.filter(organization_id__in=ids).delete()
        Organization.objects.filter(pk__in=ids).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
