#!/usr/bin/env python
"""Where a delivery task spends its CPU: `deliveries_send` called in-process on batches of the
bench's shape (one tenant, a personal webhook channel per member, the team notified), against a
loopback keep-alive receiver running in a child process (so its CPU is not ours).
`python bench/profile_deliveries.py [N] [batch]` prints the CPU and wall ms per delivery, then
cProfile of a second round: the calling thread (claim, rows, messages, results) and the send
loop's thread (transports/loop.py) each on its own.
Not a benchmark (bench/run.py does not run it)."""

from __future__ import annotations

import cProfile
import gc
import multiprocessing
import os
import pstats
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django

PREFIX = f"pd{os.getpid()}"
THREADS = int(os.environ.get("BENCH_DELIVER_THREADS", 1))  # task threads (the bench's worker: 2); cProfile sees the first only


def serve(conn) -> None:
    os.environ.setdefault("BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2"))
    from bench.bench_deliveries import Receiver

    receiver = Receiver()
    conn.send(receiver.url)
    conn.recv()  # until the parent is done


def world(tenant, members: int, url: str) -> list[int]:
    from django.contrib.auth import get_user_model

    from apps.core.crypto import encrypt
    from apps.notifications.models import ChannelConfig, Preference
    from apps.tenants.models import Membership

    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{PREFIX}-{i}", email=f"{PREFIX}-{i}@bench.test") for i in range(members)], batch_size=2000)
    Membership.objects.bulk_create([Membership(user=u, organization=tenant, role="operator") for u in users], batch_size=2000)
    sealed_url, sealed_key = encrypt(f"{url}/hook/{tenant.slug}"), encrypt("bench-key")
    ChannelConfig.objects.bulk_create(
        [ChannelConfig(tenant=tenant, name=f"hook-{u.pk}", kind="webhook", user=u, url=sealed_url, signing_secret=sealed_key) for u in users]
        + [ChannelConfig(tenant=tenant, name=f"shared-{i}", kind="webhook", url=encrypt(f"{url}/shared/{i}"), signing_secret=sealed_key)
           for i in range(2)], batch_size=2000)
    Preference.objects.bulk_create([Preference(tenant=tenant, user=u, channels=["in_app", "webhook"]) for u in users], batch_size=2000)
    return [u.pk for u in users]


def pending(tenant, members: list[int]) -> list[int]:
    from apps.notifications import services as notify
    from apps.notifications.models import Delivery

    enqueue = notify._enqueue_after_commit
    notify._enqueue_after_commit = lambda result: None
    try:
        notify.notify_team(tenant=tenant, team_members=members, title="profile delivery", message="throughput", priority="high")
    finally:
        notify._enqueue_after_commit = enqueue
    return list(Delivery.objects.filter(tenant_id=tenant.pk, status="pending").order_by("pk").values_list("pk", flat=True))


def run(ids: list[int], batch: int) -> None:
    """Batches as a worker with THREADS task threads takes them (in-process, same send loop)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from apps.notifications.services import deliveries_send

    def one(chunk):
        try:
            result = deliveries_send(delivery_ids=chunk)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()
        assert result["sent"] == len(chunk), result

    chunks = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    if THREADS == 1:
        for chunk in chunks:
            one(chunk)
        return
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, chunks))


async def _call(fn):
    fn()


def main(n: int, batch: int) -> None:
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from apps.notifications.transports.loop import send_loop
    from apps.tenants.models import Organization

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    url = parent.recv()
    tenant = Organization.objects.create(kind="tenant", slug=PREFIX, name=PREFIX)
    try:
        members = world(tenant, n, url)
        run(pending(tenant, members[:200]), batch)  # warm-up: imports, pools, connections
        gc.freeze()  # as a worker does once started (config/celery.py)
        ids = pending(tenant, members)
        cpu, wall = time.process_time(), time.perf_counter()
        run(ids, batch)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"threads={settings.NOTIFICATIONS_SEND_CONCURRENCY}: {len(ids)} deliveries, batch {batch}: "
              f"{cpu * 1000 / len(ids):.3f} ms CPU and {wall * 1000 / len(ids):.3f} ms wall per delivery ({len(ids) / wall:.0f}/s)")
        ids = pending(tenant, members)
        loop = send_loop()
        caller, sender = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)  # cProfile sees one thread
        loop.run(_call(sender.enable))
        cpu = time.process_time()
        caller.enable()
        run(ids, batch)
        caller.disable()
        loop.run(_call(sender.disable))
        print(f"profiled: {(time.process_time() - cpu) * 1000 / len(ids):.3f} ms CPU per delivery")
        for name, profile in (("calling thread", caller), ("send loop thread", sender)):
            print(f"===== {name}")
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(25)
    finally:
        from django.db import connection

        with connection.cursor() as cur:
            for table, column in (("notifications_delivery", "tenant_id"), ("notifications_notification", "tenant_id"),
                                  ("notifications_channelconfig", "tenant_id"), ("notifications_preference", "tenant_id"),
                                  ("tenants_membership", "organization_id"), ("core_event", "tenant_id")):
                cur.execute(f"DELETE FROM {table} WHERE {column} = %s", [tenant.pk])
        get_user_model().objects.filter(username__startswith=f"{PREFIX}-").delete()
        tenant.delete()
        parent.send("done")
        server.join(5)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 500)
