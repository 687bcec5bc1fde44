#!/usr/bin/env python
"""Events outbox: publish throughput (Event rows written in the caller's transaction) and
dispatch throughput (handlers run, rows marked dispatched), against PostgreSQL's raw insert
ceiling for a row of the same shape measured in the same run (../shared/bench/peers/pg_insert_bench.py).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, PEERS, line, setup_django

N = int(os.environ.get("BENCH_OUTBOX_N", "20000"))
BATCH = 1000


def peer_ceiling() -> dict:
    """PostgreSQL's own insert ceiling (executemany in one transaction) on a scratch database."""
    import psycopg

    admin = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS opsportal_peerbench")
        conn.execute("CREATE DATABASE opsportal_peerbench")
    try:
        dsn = BENCH_DB.rsplit("/", 1)[0] + "/opsportal_peerbench"
        out = subprocess.run(
            [sys.executable, str(PEERS / "pg_insert_bench.py"), "--dsn", dsn, "-n", str(N), "--batch", str(BATCH)],
            capture_output=True, text=True, timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-500:])
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS opsportal_peerbench")


def main() -> None:
    setup_django()
    from django.db import transaction

    from apps.core import events
    from apps.core.models import Event
    from apps.core.services import event_dispatch

    @events.subscribe("bench.outbox.*")
    def _noop(event):
        return None

    Event.objects.filter(name__startswith="bench.outbox.").delete()
    # Publishing is measured without the broker hop (the worker's side is "dispatch" below).
    events.enqueue_dispatch = lambda event_id: None
    events.enqueue_dispatch_many = lambda ids: None
    # publish: one event per business transaction, as services do (commit each)
    t0 = time.perf_counter()
    ids = []
    for i in range(N // 4):
        with transaction.atomic():
            ids.append(events.publish("bench.outbox.single", payload={"id": i, "title": f"thing {i}"}).pk)
    single = (N // 4) / (time.perf_counter() - t0)
    # publish: many events in one transaction (a bulk service)
    t0 = time.perf_counter()
    with transaction.atomic():
        for i in range(N):
            events.publish("bench.outbox.bulk", payload={"id": i, "title": f"thing {i}"})
    bulk = N / (time.perf_counter() - t0)
    # publish_many: a bulk service's events in one INSERT
    t0 = time.perf_counter()
    with transaction.atomic():
        for start in range(0, N, BATCH):
            events.publish_many("bench.outbox.many", payloads=[{"id": i, "title": f"thing {i}"} for i in range(start, start + BATCH)])
    many = N / (time.perf_counter() - t0)
    # dispatch what was published (as the worker does, one claim per event)
    t0 = time.perf_counter()
    for pk in ids:
        event_dispatch(event_id=pk)
    dispatch = len(ids) / (time.perf_counter() - t0)
    Event.objects.filter(name__startswith="bench.outbox.").delete()

    peer = peer_ceiling()
    ceiling = float(peer["executemany_rows_per_s"])
    line(
        "outbox",
        publish_commit_each_per_s=single,
        publish_one_tx_per_s=bulk,
        dispatch_per_s=dispatch,
        pg_executemany_ceiling_per_s=ceiling,
        publish_many_per_s=many,
        ratio_many_vs_ceiling=many / ceiling,
        n=N,
    )


if __name__ == "__main__":
    main()
