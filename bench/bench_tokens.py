#!/usr/bin/env python
"""API token vs JWT (issue 19.1 benchmark): the cost of a token-authenticated request against a
JWT-authenticated one on the same routes, same run, same user (demo data, acme's admin), called
in-process on Django's WSGI handler as gunicorn calls it (bench/profile_http.py's environ).

Rounds alternate the two schemes in short blocks (which goes first alternates too) so the load
of a shared machine hits both alike; per scheme the median over rounds of the mean wall time per
request (ms, PostgreSQL and Redis round trips included) and of this process's CPU time.
`ratio` = the median over rounds of token / JWT wall time of the same round (paired, so a load
swing between rounds cancels out; target ≤ 1.10). `auth_*_us`: the authentication step alone
(the DRF authentication classes in settings order, then the acting context), wall µs.
Env: BENCH_TOKENS_ROUNDS (40), BENCH_TOKENS_REQUESTS (25 per round and scheme).
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

ROUNDS = int(os.environ.get("BENCH_TOKENS_ROUNDS", "40"))
REQUESTS = int(os.environ.get("BENCH_TOKENS_REQUESTS", "25"))


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
        ratio = statistics.median(t[0] / j[0] for t, j in zip(runs["token"], runs["jwt"], strict=True))
        worst = max(worst, ratio)
        parts.append(
            f"{name}_jwt_ms={med['jwt'][0]:.3f} {name}_token_ms={med['token'][0]:.3f} "
            f"{name}_jwt_cpu_ms={med['jwt'][1]:.3f} {name}_token_cpu_ms={med['token'][1]:.3f} {name}_ratio={ratio:.3f}"
        )
    auth = _auth_step(admin, jwt, secret)
    parts.append(f"auth_jwt_us={auth['jwt']:.0f} auth_token_us={auth['token']:.0f}")
    ApiToken.objects.filter(user=admin, name="bench").delete()
    print(
        f"tokens: {' '.join(parts)} worst_ratio={worst:.3f} target<=1.10 rounds={ROUNDS} requests={REQUESTS} "
        f"load1={os.getloadavg()[0]:.2f}"
    )


def _auth_step(user, jwt: str, secret: str) -> dict:
    """Median wall µs of authenticating one request (settings' classes in order) and computing its acting context."""
    from rest_framework.settings import api_settings
    from rest_framework.test import APIRequestFactory

    from apps.core.tenancy import acting

    factory = APIRequestFactory()
    classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES

    def once(token):
        request = factory.get(ROUTES["me"], HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="127.0.0.1")
        for cls in classes:
            found = cls().authenticate(request)
            if found:
                acting(found[0])
                return

    samples = {"jwt": [], "token": []}
    for r in range(ROUNDS):
        for scheme, token in (("jwt", jwt), ("token", secret)) if r % 2 == 0 else (("token", secret), ("jwt", jwt)):
            start = time.perf_counter()
            for _ in range(REQUESTS):
                once(token)
            samples[scheme].append((time.perf_counter() - start) * 1e6 / REQUESTS)
    return {k: statistics.median(v) for k, v in samples.items()}


if __name__ == "__main__":
    main()
