#!/usr/bin/env python
"""notify_team fan-out rate and outbox delivery throughput, against PostgreSQL's COPY ceiling.

1. fan-out: `notify_team` to FANOUT members of a role (default preferences: in-app + email), so
   one notification and one delivery row per member, committed in one transaction (the enqueue
   after commit is switched off here: this phase measures the rows).
2. delivery: a real Celery worker (`celery worker -Q notifications`, default concurrency) sends
   DELIVER personal-webhook deliveries to a loopback HTTP server; time from notify_team to the
   last row marked sent.
3. peer: ../shared/bench/peers/pg_insert_bench.py (-n PEER_N) on a scratch database created
   and dropped here; ratio = our fan-out rows/s ÷ the peer's COPY rows/s.
"""

from __future__ import annotations

import json
import os
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

from bench.common import BENCH_DB, PEERS, ROOT, line, run_peer, setup_django  # noqa: E402

FANOUT = int(os.environ.get("BENCH_NOTIFY_FANOUT", 10000))
DELIVER = int(os.environ.get("BENCH_NOTIFY_DELIVER", 3000))
PEER_N = int(os.environ.get("BENCH_PEER_N", 50000))
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
        cur.execute("DELETE FROM tenants_membership WHERE organization_id = ANY(%s)", [tenant_ids])
        cur.execute("DELETE FROM auth_user WHERE username LIKE %s", [f"{PREFIX}-%"])
        cur.execute("DELETE FROM tenants_organization WHERE id = ANY(%s)", [tenant_ids])


def peer_copy_rate() -> int:
    import psycopg

    admin = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    name = f"notif_peer_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        host = BENCH_DB.split("@", 1)[1].split("/", 1)[0]
        user = BENCH_DB.split("//", 1)[1].split("@", 1)[0]
        h, _, p = host.partition(":")
        out = run_peer([sys.executable, str(PEERS / "pg_insert_bench.py"), "--dsn", f"host={h} port={p or 5432} user={user} dbname={name}", "-n", str(PEER_N)])
        return json.loads(out.strip().splitlines()[-1])["copy_rows_per_s"]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main():
    setup_django()
    from django.db import transaction

    from apps.core.crypto import encrypt
    from apps.notifications import services
    from apps.notifications.models import ChannelConfig, Delivery, Preference
    from apps.tenants.models import Organization
    from config.celery import app

    t1 = Organization.objects.create(kind="tenant", slug=f"{PREFIX}-fan", name=f"{PREFIX} fan-out")
    t2 = Organization.objects.create(kind="tenant", slug=f"{PREFIX}-del", name=f"{PREFIX} delivery")
    worker = None
    try:
        # -- 1. fan-out ----------------------------------------------------------------------
        make_team(t1, "operator", FANOUT, "f")
        enqueue, services._enqueue_after_commit = services._enqueue_after_commit, lambda result: None
        start = time.perf_counter()
        rows = services.notify_team(tenant=t1, role_filter="operator", title="Maintenance tonight", message="22:00-02:00", priority="high")
        fan_s = time.perf_counter() - start
        services._enqueue_after_commit = enqueue
        created = len(rows) + Delivery.objects.filter(tenant=t1).count()

        # -- 2. delivery through the outbox and a real worker --------------------------------
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
        worker = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-Q", "notifications", "--loglevel=WARNING", "-n", f"{PREFIX}@%h"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
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

        # -- 3. the peer ---------------------------------------------------------------------
        copy_rate = peer_copy_rate()
        fan_rate = created / fan_s
        line(
            "notifications_fanout",
            members=FANOUT, rows=created, fanout_s=round(fan_s, 3), fanout_rows_per_s=round(fan_rate),
            pg_copy_rows_per_s=copy_rate, ratio_to_copy=round(fan_rate / copy_rate, 3),
            deliveries=DELIVER, delivered=sent, webhook_posts=Hook.count, deliver_s=round(deliver_s, 2),
            deliveries_per_s=round(sent / deliver_s), worker_concurrency=procs,
        )
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        cleanup([t1.pk, t2.pk])


if __name__ == "__main__":
    main()
