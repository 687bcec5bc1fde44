#!/usr/bin/env python
"""API token vs JWT (issue 19.1 benchmark): the cost of a token-authenticated request against a
JWT-authenticated one on the same routes, same run, same user (demo data, acme's admin), called
in-process on Django's WSGI handler as gunicorn calls it (bench/profile_http.py's environ).

Rounds alternate the two schemes (which goes first alternates too) so machine noise hits both;
per scheme the median over rounds of the mean wall time per request (ms, PostgreSQL and Redis
round trips included) and of the CPU time of this process. `ratio` = token / JWT wall time
(target ≤ 1.10). Env: BENCH_TOKENS_ROUNDS (12), BENCH_TOKENS_REQUESTS (100 per round and scheme).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import ROUTES, _demo
from common import setup_django
from profile_http import environ

ROUNDS = int(os.environ.get("BENCH_TOKENS_ROUNDS", "12"))
REQUESTS = int(os.environ.get("BENCH_TOKENS_REQUESTS", "100"))


def main() -> None:
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    os.environ.setdefault("API_THROTTLE_USER", "100000000/min")
    setup_django()
    jwt = _demo()
    from django.contrib.auth import get_user_model
    from django.core.wsgi import get_wsgi_application

    from apps.tenants.models import ApiToken, Organization
    from apps.tenants.tokens.services import api_token_create

    admin = get_user_model().objects.get(username="acme-admin")
    ApiToken.objects.filter(user=admin, name="bench").delete()
    _, secret = api_token_create(actor=admin, organization=Organization.objects.get(slug="acme"), name="bench")
    app = get_wsgi_application()

    def call(path, token):
        statuses = []
        result = app(environ(path, token), lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(result)
        result.close()
        if not statuses[0].startswith("200"):
            raise SystemExit(f"{path} answered {statuses[0]}")

    def block(path, token):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(REQUESTS):
            call(path, token)
        return (time.perf_counter() - wall) * 1000 / REQUESTS, (time.process_time() - cpu) * 1000 / REQUESTS

    parts = []
    worst = 0.0
    for name in ("me", "list"):
        path = ROUTES[name]
        for token in (jwt, secret):
            for _ in range(30):  # warm: imports, connections, kept principals
                call(path, token)
        runs = {"jwt": [], "token": []}
        for r in range(ROUNDS):
            order = (("jwt", jwt), ("token", secret)) if r % 2 == 0 else (("token", secret), ("jwt", jwt))
            for scheme, token in order:
                runs[scheme].append(block(path, token))
        med = {s: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for s, v in runs.items()}
        ratio = med["token"][0] / med["jwt"][0]
        worst = max(worst, ratio)
        parts.append(
            f"{name}_jwt_ms={med['jwt'][0]:.3f} {name}_token_ms={med['token'][0]:.3f} "
            f"{name}_jwt_cpu_ms={med['jwt'][1]:.3f} {name}_token_cpu_ms={med['token'][1]:.3f} {name}_ratio={ratio:.3f}"
        )
    ApiToken.objects.filter(user=admin, name="bench").delete()
    print(
        f"tokens: {' '.join(parts)} worst_ratio={worst:.3f} target<=1.10 rounds={ROUNDS} requests={REQUESTS} "
        f"load1={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
