#!/usr/bin/env python
"""notify_team fan-out (committed) against PostgreSQL's COPY of the same rows, and outbox delivery throughput.

1. fan-out: `notify_team` to FANOUT members of a role, shaped like a real team: 5 % have their
   own preferences (digests, quiet hours, in-app only, e-mail for high+ only), 1 % a personal
   webhook, a shared team channel, and every member already had a notification in the rate-limit
   window (so the recent-count read has rows to count). ROUNDS rounds, each committed in one
   transaction (the enqueue after commit is switched off here: this phase measures the rows);
   the median and best are printed, with the rows written (notifications, deliveries, the event)
   and the median CPU of one round in this process (planning, binding) and in its PostgreSQL
   backend (statements, foreign-key checks at commit), which a busy machine disturbs less.
2. delivery: a real Celery worker (`celery worker -Q notifications`, default concurrency) sends
   DELIVER personal-webhook deliveries to a loopback HTTP server; time from notify_team to the
   last row marked sent (BENCH_NOTIFY_DELIVER=0 skips it).
3. ceiling, same run: the rows of the last round (COPY TO STDOUT) are COPYed back into scratch
   copies of the two tables — bare (no index, no foreign key: PostgreSQL's ingest ceiling) and
   with the same indexes (no foreign keys) — each timed to its commit. ratio_to_copy = COPY time
   of the bare tables ÷ our fan-out time (1.0 would be the ceiling).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"] = REDIS

from bench.common import BENCH_DB, ROOT, line, setup_django  # noqa: E402

FANOUT = int(os.environ.get("BENCH_NOTIFY_FANOUT", 10000))
DELIVER = int(os.environ.get("BENCH_NOTIFY_DELIVER", 3000))
ROUNDS = int(os.environ.get("BENCH_NOTIFY_ROUNDS", 5))
PREFIX = f"bn{os.getpid()}"


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Hook.lock:
            Hook.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def make_team(tenant, role, n, tag):
    from django.contrib.auth import get_user_model

    from apps.tenants.models import Membership

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"{PREFIX}-{tag}-{i}", email=f"{PREFIX}-{tag}-{i}@bench.test", is_staff=True) for i in range(n)], batch_size=2000
    )
    Membership.objects.bulk_create([Membership(user=u, organization=tenant, role=role) for u in users], batch_size=2000)
    return users


def cleanup(tenant_ids):
    from django.db import connection

    with connection.cursor() as cur:
        for table in ("notifications_delivery", "notifications_notification", "notifications_channelconfig", "notifications_preference"):
            cur.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])
        cur.execute("DELETE FROM core_event WHERE tenant_id = ANY(%s)", [tenant_ids])
        cur.execute("DELETE FROM tenants_membership WHERE organization_id = ANY(%s)", [tenant_ids])
        cur.execute("DELETE FROM auth_user WHERE username LIKE %s", [f"{PREFIX}-%"])
        cur.execute("DELETE FROM tenants_organization WHERE id = ANY(%s)", [tenant_ids])


def shape_team(tenant, users):
    """Preferences and channels of a real team (see the module docstring)."""
    from datetime import time as clock

    from apps.core.crypto import encrypt
    from apps.notifications.models import ChannelConfig, Preference

    shapes = [
        {"channels": ["in_app", "email"], "digest": "daily"},
        {"channels": ["in_app", "email"], "quiet_start": clock(0), "quiet_end": clock(23, 59), "urgent_bypasses_quiet": True},
        {"channels": ["in_app"]},
        {"channels": ["in_app", "email"], "min_priority": {"email": "urgent"}},
        {"channels": ["in_app", "email", "webhook"], "timezone": "Europe/Berlin"},
    ]
    prefs = [Preference(tenant=tenant, user=u, **shapes[i % len(shapes)]) for i, u in enumerate(users[: len(users) // 20])]
    Preference.objects.bulk_create(prefs, batch_size=2000)
    hook = encrypt("http://127.0.0.1:9/hook")
    hooked = [p.user for p in prefs if "webhook" in p.channels]
    ChannelConfig.objects.bulk_create([ChannelConfig(tenant=tenant, name=f"hook-{u.pk}", kind="webhook", user=u, url=hook) for u in hooked])
    ChannelConfig.objects.create(tenant=tenant, name="team room", kind="webhook", url=hook)


def copy_ceiling(tenant_id, title) -> tuple[float, float]:
    """Seconds to COPY the rows of one fan-out (text from COPY TO) into scratch copies of the two
    tables, bare and with the same indexes, each to its commit."""
    import psycopg
    from psycopg import sql

    tables = {
        "notifications_notification": f"SELECT * FROM notifications_notification WHERE tenant_id = {int(tenant_id)} AND title = %s",
        "notifications_delivery": f"SELECT d.* FROM notifications_delivery d JOIN notifications_notification n ON n.id = d.notification_id "
                                  f"WHERE n.tenant_id = {int(tenant_id)} AND n.title = %s",
    }
    out = []
    with psycopg.connect(BENCH_DB) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS ceiling_{table}")
        data = {}
        for table, query in tables.items():
            chunks = []
            with conn.cursor().copy(f"COPY ({query.replace('%s', sql.Literal(title).as_string(conn))}) TO STDOUT") as cp:
                chunks.extend(bytes(c) for c in cp)
            data[table] = b"".join(chunks)
        for like in ("", " INCLUDING INDEXES"):
            for table in tables:
                conn.execute(f"CREATE TABLE ceiling_{table} (LIKE {table} INCLUDING DEFAULTS{like})")
            conn.commit()
            start = time.perf_counter()
            for table in tables:
                with conn.cursor().copy(f"COPY ceiling_{table} FROM STDIN") as cp:
                    cp.write(data[table])
            conn.commit()
            out.append(time.perf_counter() - start)
            for table in tables:
                conn.execute(f"DROP TABLE ceiling_{table}")
            conn.commit()
    return out[0], out[1]


def fan_out_rounds(tenant):
    from django.db import connection

    from apps.core.models import Event
    from apps.notifications import services
    from apps.notifications.models import Delivery, Notification
    from bench.common import process_cpu_seconds

    enqueue, services._enqueue_after_commit = services._enqueue_after_commit, lambda result: None
    try:  # the warm-up round is the team's earlier notification (rate-limit window, caches)
        services.notify_team(tenant=tenant, role_filter="operator", title="Earlier today", priority="medium")
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        times, cpu_py, cpu_pg = [], [], []
        for i in range(ROUNDS):
            start, py, pg = time.perf_counter(), time.process_time(), process_cpu_seconds(backend)
            services.notify_team(tenant=tenant, role_filter="operator", title=f"Maintenance tonight {i}", message="22:00-02:00", priority="high")
            times.append(time.perf_counter() - start)
            cpu_py.append(time.process_time() - py)
            cpu_pg.append(process_cpu_seconds(backend) - pg)
    finally:
        services._enqueue_after_commit = enqueue
    title = f"Maintenance tonight {ROUNDS - 1}"
    rows = (Notification.objects.filter(tenant=tenant, title=title).count(), Delivery.objects.filter(notification__tenant=tenant, notification__title=title).count(),
            Event.objects.filter(tenant=tenant, name="notification.team_sent", payload__title=f"Team notified: {title}").count())
    return sorted(times), rows, title, (statistics.median(cpu_py), statistics.median(cpu_pg))


def deliver_phase(t2, workers: list):
    """Phase 2 (unchanged): DELIVER personal-webhook deliveries through a real worker."""
    from django.db import transaction

    from apps.core.crypto import encrypt
    from apps.notifications import services
    from apps.notifications.models import ChannelConfig, Delivery, Preference
    from config.celery import app

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    users = make_team(t2, "operator", DELIVER, "d")
    sealed_url, sealed_key = encrypt(url), encrypt("bench-key")
    ChannelConfig.objects.bulk_create(
        [ChannelConfig(tenant=t2, name=f"hook-{u.pk}", kind="webhook", user=u, url=sealed_url, signing_secret=sealed_key) for u in users], batch_size=2000
    )
    Preference.objects.bulk_create([Preference(tenant=t2, user=u, channels=["in_app", "webhook"]) for u in users], batch_size=2000)
    app.control.purge()
    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "LOG_LEVEL": "WARNING"}
    workers.append(subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-Q", "notifications", "--loglevel=WARNING", "-n", f"{PREFIX}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[f"{PREFIX}@{os.uname().nodename}"], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
    concurrency = app.control.inspect(destination=[f"{PREFIX}@{os.uname().nodename}"]).stats() or {}
    procs = next(iter(concurrency.values()), {}).get("pool", {}).get("max-concurrency", "?")
    start = time.perf_counter()
    with transaction.atomic():
        services.notify_team(tenant=t2, role_filter="operator", title="Deploy finished", priority="medium")
    sent = 0
    while time.perf_counter() - start < 120:
        sent = Delivery.objects.filter(tenant=t2, status="sent").count()
        if sent >= DELIVER:
            break
        time.sleep(0.05)
    deliver_s = time.perf_counter() - start
    server.shutdown()
    return sent, deliver_s, procs


def main():
    setup_django()
    from apps.tenants.models import Organization

    t1 = Organization.objects.create(kind="tenant", slug=f"{PREFIX}-fan", name=f"{PREFIX} fan-out")
    t2 = Organization.objects.create(kind="tenant", slug=f"{PREFIX}-del", name=f"{PREFIX} delivery")
    workers: list = []
    try:
        # -- 1. fan-out, 3. its COPY ceiling ------------------------------------------------
        shape_team(t1, make_team(t1, "operator", FANOUT, "f"))
        times, (notes, deliveries, events), title, (cpu_py, cpu_pg) = fan_out_rounds(t1)
        fan_s = statistics.median(times)
        copy_s, copy_indexed_s = copy_ceiling(t1.pk, title)
        # -- 2. delivery through the outbox and a real worker ----------------------------------
        sent, deliver_s, procs = deliver_phase(t2, workers) if DELIVER else (0, 0.0, "-")
        rows = notes + deliveries + events
        line(
            "notifications_fanout",
            members=FANOUT, rows=rows, notifications=notes, deliveries_written=deliveries, events=events,
            fanout_s=round(fan_s, 3), fanout_best_s=round(times[0], 3), fanout_rows_per_s=round(rows / fan_s),
            fanout_cpu_py_s=round(cpu_py, 3), fanout_cpu_pg_s=round(cpu_pg, 3),
            pg_copy_s=round(copy_s, 3), pg_copy_indexed_s=round(copy_indexed_s, 3), ratio_to_copy=round(copy_s / fan_s, 3),
            deliveries=DELIVER, delivered=sent, webhook_posts=Hook.count, deliver_s=round(deliver_s, 2),
            deliveries_per_s=round(sent / deliver_s) if deliver_s else 0, worker_concurrency=procs, load1=round(os.getloadavg()[0], 1),
        )
    finally:
        for worker in workers:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        cleanup([t1.pk, t2.pk])


if __name__ == "__main__":
    main()
