#!/usr/bin/env python
"""Where a resend request spends its CPU: token `POST /api/v1/alerts/ingest` of 100 unchanged
alerts (bench_alerts' resend shape), called in-process on Django's WSGI handler as gunicorn calls
it — the whole middleware stack, persistent connection, Redis — on the bench database.
`python bench/profile_ingest.py [N] [--no-profile]` prints the CPU per request and, unless told
not to, cProfile's functions with the most cumulative and own time. Not a benchmark (bench/run.py
does not run it)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_alerts import REDIS, SERIES, B, resend_rounds
from common import setup_django


def environ(body: bytes, token: str) -> dict:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/alerts/ingest", "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {token}", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False}


def main(n: int, profile_it: bool) -> None:
    # as bench_alerts starts gunicorn: kept connections, production's settings otherwise
    os.environ.update({"DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1", "DB_CONN_MAX_AGE": "60", "REDIS_URL": REDIS,
                       "CELERY_BROKER_URL": REDIS, "CELERY_TASK_ALWAYS_EAGER": "false", "AXES_ENABLED": "false",
                       "LOG_LEVEL": "WARNING"})
    setup_django()
    from django.core.wsgi import get_wsgi_application

    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind
    from apps.core.models import Event
    from apps.tenants.models import Organization

    slug = f"profile-ingest-{uuid.uuid4().hex[:6]}"
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=slug, name=slug)
    token, raw = ingest_token_create(actor=None, tenant=tenant, name="profile")
    bodies = resend_rounds(uuid.uuid4().hex[:8])[0]  # round 0: every series firing
    app = get_wsgi_application()
    statuses = []

    def call(body: bytes):
        result = app(environ(body, raw), lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(result)
        result.close()

    try:
        for body in bodies * 2:  # fire every series, then one resend of each (imports, memos, connections)
            call(body)
        statuses.clear()
        start = time.process_time()
        for i in range(n):
            call(bodies[i % len(bodies)])
        plain = (time.process_time() - start) * 1000 / n
        assert set(statuses) == {"200 OK"}, set(statuses)
        print(f"ingest resend ({SERIES} series, {B} per request): {plain:.3f} ms CPU per request in-process (without profiling)")
        if profile_it:
            profile = cProfile.Profile(time.process_time)  # CPU, not waiting
            profile.enable()
            for i in range(n):
                call(bodies[i % len(bodies)])
            profile.disable()
            stats = pstats.Stats(profile).sort_stats("cumulative")
            stats.print_stats(int(os.environ.get("PROFILE_LINES", 60)))
            stats.sort_stats("tottime").print_stats(30)
    finally:
        Alert.objects.filter(tenant=tenant).delete()
        Event.objects.filter(tenant=tenant).delete()
        token.delete()
        tenant.delete()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 1000, "--no-profile" not in sys.argv)
