#!/usr/bin/env python
"""The ordinary request path (issue 16, Performance), tried as a new user would: wrk at 32
connections against gunicorn with config/gunicorn.conf.py on PostgreSQL with the demo data
(`seed_demo`, 25 tickets of tenant acme), as acme's admin with a Bearer JWT:

- `GET /api/v1/users/me`, `GET /api/v1/notifications/unread-count/`, `GET /api/v1/tickets/?page_size=25`
  (25 rows);
- the reference in the same run: a bare Django JSON view (bench/bare_django.py: no apps, no
  middleware, no database) served by gunicorn with the same settings.

Per route: requests/s, p50/p99 (ms, wrk's), errors, and CPU per request (ms) of gunicorn
(`cpu_ms`, its master and workers), PostgreSQL's backends (`pg_ms`) and wrk (`wrk_ms`); the rate
ratio to the bare view. On a shared machine the rates follow the other load (`load1` is printed)
while the CPU per request is the steady figure. Env: BENCH_HTTP_SECONDS (10 per route), BENCH_HTTP_WARMUP (5),
BENCH_HTTP_CONNECTIONS (32).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, LiveServer, PostgresCpu, line, setup_django
from wrk import run_wrk

SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_HTTP_CONNECTIONS", "32"))
WARMUP = float(os.environ.get("BENCH_HTTP_WARMUP", "5"))
ROUTES = {
    "me": "/api/v1/users/me",
    "unread": "/api/v1/notifications/unread-count/",
    "list": "/api/v1/tickets/?page_size=25",
}


def _demo() -> str:
    """The demo data, 25 tickets of acme, and a JWT of acme's admin."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.tickets.models import Ticket
    from apps.tickets.services import ticket_create

    call_command("seed_demo", quiet=True)
    User = get_user_model()
    customer = User.objects.get(username="acme-customer")
    for i in range(Ticket.objects.filter(tenant__slug="acme").count(), 25):
        ticket_create(actor=customer, subject=f"Demo ticket {i}", message="The router blinks red.", priority="normal")
    return str(RefreshToken.for_user(User.objects.get(username="acme-admin")).access_token)


def measure(server, url: str, headers: dict, database: str):
    import urllib.request

    for _ in range(40):  # the workers' first requests (lazy imports, connections) before any clock
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            r.read()
    run_wrk(url, seconds=WARMUP, connections=CONNECTIONS, headers=headers)  # warm-up: imports, connections, kept rows
    cpu0 = server.cpu_seconds()
    with PostgresCpu(database) as pg:
        result = run_wrk(url, seconds=SECONDS, connections=CONNECTIONS, headers=headers)
    n = max(result.requests, 1)
    return result, (server.cpu_seconds() - cpu0) * 1000 / n, pg.seconds * 1000 / n, result.cpu_s * 1000 / n


def main() -> None:
    setup_django()
    token = _demo()
    database = BENCH_DB.rsplit("/", 1)[1]
    figures = {}
    with LiveServer(app="bench.bare_django:application") as bare:
        result, cpu, _pg, wrk_ms = measure(bare, f"{bare.url}/me", {}, database)
        figures["bare"] = (result, cpu, 0.0, wrk_ms)
    with LiveServer() as server:
        for name, path in ROUTES.items():
            figures[name] = measure(server, server.url + path, {"Authorization": f"Bearer {token}"}, database)
    bare_rate = figures["bare"][0].rate
    out = {}
    for name, (result, cpu, pg, wrk_ms) in figures.items():
        out.update({f"{name}_per_s": result.rate, f"{name}_p50_ms": result.p50_ms, f"{name}_p99_ms": result.p99_ms,
                    f"{name}_errors": result.errors, f"{name}_cpu_ms": cpu})
        if name != "bare":
            out.update({f"{name}_pg_ms": pg, f"{name}_vs_bare": result.rate / bare_rate if bare_rate else float("nan")})
        out[f"{name}_wrk_ms"] = wrk_ms
    line("http", connections=CONNECTIONS, seconds=SECONDS, **out, load1=os.getloadavg()[0], at=time.strftime("%H:%M"))


if __name__ == "__main__":
    main()
