#!/usr/bin/env python
"""Webhook deliveries/s on ONE Celery worker process, against Celery's one-task-per-item ceiling
measured on the same worker in the same run.

Set-up: three tenants, skewed (70 / 20 / 10 % of the members), each member with a personal
webhook channel and each tenant with two shared ones, all pointing at one loopback HTTP/1.1
keep-alive receiver (asyncio, answers 200 at once, counts connections and requests); a long
history of sent deliveries (BENCH_DELIVER_HISTORY rows) in the table beforehand.

1. ceilings, one task per item: (a) the peer's no-op load (`peers/celery_noop_load.py delay`,
   stock Celery settings, `celery_peer_app` worker with the same pool and threads) on our Redis
   DB; (b) BENCH_DELIVER_NOOP no-op tasks (`celery.accumulate`, built in) through the portal's own
   worker (acks_late, prefetch 1, task events), timed until the worker's counter says all ran.
2. deliveries: `notify_team` on each tenant (rows written first, the clock not running), then the
   pending ids enqueued as the portal does (`enqueue_deliveries`); time until every row is sent.

The worker: `celery -A config worker -P threads -c BENCH_DELIVER_THREADS -Q notifications`, one
OS process. Prints one line: deliveries/s, worker CPU ms per delivery, ceiling tasks/s, ratio.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"] = REDIS

from bench.common import BENCH_DB, ROOT, PostgresCpu, line, process_cpu_seconds, setup_django  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_DELIVER_MEMBERS", 6000))
HISTORY = int(os.environ.get("BENCH_DELIVER_HISTORY", 200_000))
NOOP = int(os.environ.get("BENCH_DELIVER_NOOP", 5000))
THREADS = int(os.environ.get("BENCH_DELIVER_THREADS", 2))
SKEW = (0.7, 0.2, 0.1)
PREFIX = f"bd{os.getpid()}"


class Receiver:
    """A loopback HTTP/1.1 receiver on its own asyncio loop: keep-alive, 200 with an empty body."""

    def __init__(self):
        self.connections = self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for raw in head.split(b"\r\n"):
                    if raw[:15].lower() == b"content-length:":
                        length = int(raw[15:])
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def start_worker(name: str) -> subprocess.Popen:
    from config.celery import app

    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60"}
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-P", "threads", "-c", str(THREADS), "-Q", "notifications",
         "--loglevel=WARNING", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not app.control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
    return proc


def stop(proc: subprocess.Popen) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_until(predicate, timeout: float = 600, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(step)


def celery_ceiling(name: str) -> float:
    """No-op tasks/s through the same worker, one apply_async per item (the one-task-per-item path)."""
    from config.celery import app

    node = f"{name}@{os.uname().nodename}"

    def done() -> int:
        stats = app.control.inspect(destination=[node], timeout=1).stats() or {}
        return stats.get(node, {}).get("total", {}).get("celery.accumulate", 0)

    before = done()
    start = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(NOOP):
            app.send_task("celery.accumulate", args=[i], queue="notifications", producer=producer, ignore_result=True)
    wait_until(lambda: done() >= before + NOOP, step=0.1)
    return NOOP / (time.perf_counter() - start)


def peer_ceiling() -> float:
    """The peer's one-task-per-item no-op load on a stock Celery worker (same pool), this run."""
    import json
    import tempfile

    from bench.common import PEERS

    record = tempfile.NamedTemporaryFile(prefix="deliver-noop-", delete=False)  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": str(PEERS), "DJANGO_SETTINGS_MODULE": "celery_peer_settings", "PEER_BROKER": REDIS,
           "PEER_RECORD_FILE": record.name}
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "celery_peer_app", "worker", "-P", "threads", "-c", str(THREADS), "-l", "WARNING",
         "-n", f"{PREFIX}-peer@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=PEERS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        load = [str(ROOT / ".venv/bin/python"), str(PEERS / "celery_noop_load.py")]
        subprocess.run([*load, "delay", "-n", "300"], cwd=PEERS, env=env, check=True, capture_output=True, timeout=300)  # warm-up
        out = subprocess.run([*load, "delay", "-n", str(NOOP)], cwd=PEERS, env=env, check=True, capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])["tasks_per_s"]
    finally:
        stop(worker)
        os.unlink(record.name)


def make_world(tenants, url):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.core.crypto import encrypt
    from apps.notifications.models import ChannelConfig, Preference
    from apps.tenants.models import Membership

    User = get_user_model()
    sealed_key = encrypt("bench-key")
    members = {}
    for tenant, share in zip(tenants, SKEW, strict=True):
        n = int(MEMBERS * share)
        users = User.objects.bulk_create(
            [User(username=f"{PREFIX}-{tenant.slug}-{i}", email=f"{PREFIX}-{tenant.slug}-{i}@bench.test") for i in range(n)], batch_size=2000)
        Membership.objects.bulk_create([Membership(user=u, organization=tenant, role="operator") for u in users], batch_size=2000)
        sealed = encrypt(f"{url}/hook/{tenant.slug}")
        ChannelConfig.objects.bulk_create(
            [ChannelConfig(tenant=tenant, name=f"hook-{u.pk}", kind="webhook", user=u, url=sealed, signing_secret=sealed_key) for u in users]
            + [ChannelConfig(tenant=tenant, name=f"shared-{i}", kind="webhook", url=encrypt(f"{url}/shared/{tenant.slug}/{i}"),
                             signing_secret=sealed_key) for i in range(2)],
            batch_size=2000)
        Preference.objects.bulk_create([Preference(tenant=tenant, user=u, channels=["in_app", "webhook"]) for u in users], batch_size=2000)
        members[tenant] = [u.pk for u in users]
    # long history: old sent deliveries (copies of one sent row per tenant, spread over 30 days)
    from apps.notifications import services as notify

    for tenant in tenants:
        notify.notify_team(tenant=tenant, team_members=members[tenant][:1], title="history", auto_send=False)
    from apps.notifications.models import Notification

    columns = [f.column for f in Notification._meta.concrete_fields if f.column not in ("id", "created_at", "updated_at")]
    with connection.cursor() as cur:
        for tenant, share in zip(tenants, SKEW, strict=True):
            n = int(HISTORY * share)
            cur.execute(  # old notifications, then one sent delivery each over a shared channel, spread over 30 days
                f"""INSERT INTO notifications_notification ({", ".join(columns)}, created_at, updated_at)
                    SELECT {", ".join("n." + c for c in columns)}, now() - g * interval '13 seconds', now() - g * interval '13 seconds'
                    FROM notifications_notification n, generate_series(1, %s) g WHERE n.tenant_id = %s AND n.title = 'history'""",
                [n, tenant.pk])
            cur.execute(
                """INSERT INTO notifications_delivery (tenant_id, notification_id, recipient_id, kind, channel_id, status, reason,
                   attempts, next_attempt_at, claimed_at, sent_at, last_error, created_at, updated_at)
                   SELECT n.tenant_id, n.id, NULL, 'webhook', c.id, 'sent', '', 1, n.created_at, n.created_at, n.created_at, '',
                          n.created_at, n.created_at
                   FROM notifications_notification n
                   JOIN notifications_channelconfig c ON c.tenant_id = n.tenant_id AND c.name = 'shared-0'
                   WHERE n.tenant_id = %s AND n.title = 'history' AND n.created_at < now() - interval '1 second'""",
                [tenant.pk])
        cur.execute("ANALYZE notifications_notification")
        cur.execute("ANALYZE notifications_delivery")
    return members


T0 = time.perf_counter()


def progress(what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {what}", file=sys.stderr, flush=True)


def main():
    setup_django()
    from django.db import connection

    from apps.notifications import services as notify
    from apps.notifications.models import Delivery
    from apps.tenants.models import Organization
    from config.celery import app

    receiver = Receiver()
    tenants = [Organization.objects.create(kind="tenant", slug=f"{PREFIX}-{c}", name=f"{PREFIX} {c}") for c in "abc"]
    tenant_ids = [t.pk for t in tenants]
    enqueue_after_commit = notify._enqueue_after_commit
    worker = None
    try:
        members = make_world(tenants, receiver.url)
        progress("world")
        app.control.purge()
        peer = peer_ceiling()
        progress(f"peer ceiling {peer:.0f}/s")
        worker = start_worker(PREFIX)
        ceiling = celery_ceiling(PREFIX)
        progress(f"portal worker ceiling {ceiling:.0f}/s")
        notify._enqueue_after_commit = lambda result: None  # rows first, then the clock
        try:
            for tenant in tenants:
                notify.notify_team(tenant=tenant, team_members=members[tenant], title="bench delivery", message="throughput", priority="high")
        finally:
            notify._enqueue_after_commit = enqueue_after_commit
        pending = list(Delivery.objects.filter(tenant_id__in=tenant_ids, status="pending").values_list("pk", flat=True))
        total = len(pending)
        # the wait polls a primary-key range, not 6,000 ids: a poll must not eat the CPU it measures
        batch_rows = Delivery.objects.filter(tenant_id__in=tenant_ids, pk__range=(min(pending), max(pending)))
        assert batch_rows.count() == total, "rows other than the pending ones in the id range"
        progress(f"{total} deliveries written")
        connections0, requests0 = receiver.connections, receiver.requests
        with PostgresCpu(BENCH_DB.rsplit("/", 1)[1]) as pg:
            cpu0, start = process_cpu_seconds(worker.pid), time.perf_counter()
            notify.enqueue_deliveries(pending)
            wait_until(lambda: batch_rows.filter(status="sent").count() >= total, step=0.2)
            seconds, cpu = time.perf_counter() - start, process_cpu_seconds(worker.pid) - cpu0
        rate = total / seconds
        line(
            "deliveries",
            deliveries=total, seconds=round(seconds, 2), deliveries_per_s=round(rate, 1),
            worker_cpu_ms_per_delivery=round(cpu * 1000 / total, 3), postgres_cpu_ms_per_delivery=round(pg.seconds * 1000 / total, 3),
            celery_noop_peer_per_s=round(peer, 1), ratio_to_celery_peer=round(rate / peer, 2),
            celery_noop_portal_worker_per_s=round(ceiling, 1), ratio_to_portal_worker=round(rate / ceiling, 2),
            http_requests=receiver.requests - requests0, http_connections=receiver.connections - connections0,
            batch=os.environ.get("NOTIFICATIONS_DELIVERY_BATCH", "default"), worker_threads=THREADS,
            history_rows=HISTORY, load1=round(os.getloadavg()[0], 1), cores=os.cpu_count(),
        )
    finally:
        if worker is not None:
            stop(worker)
        app.control.purge()
        with connection.cursor() as cur:
            cur.execute("DELETE FROM notifications_delivery WHERE tenant_id = ANY(%s)", [tenant_ids])
            cur.execute("DELETE FROM notifications_notification WHERE tenant_id = ANY(%s)", [tenant_ids])
            cur.execute("DELETE FROM notifications_channelconfig WHERE tenant_id = ANY(%s)", [tenant_ids])
            cur.execute("DELETE FROM notifications_preference WHERE tenant_id = ANY(%s)", [tenant_ids])
            cur.execute("DELETE FROM tenants_membership WHERE organization_id = ANY(%s)", [tenant_ids])
        from django.contrib.auth import get_user_model

        get_user_model().objects.filter(username__startswith=f"{PREFIX}-").delete()
        Organization.objects.filter(pk__in=tenant_ids).delete()


if __name__ == "__main__":
    main()
