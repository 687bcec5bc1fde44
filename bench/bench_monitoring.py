"""1,000 HTTP endpoints at a 60 s interval against a loopback server, handled by the dispatcher.

Measures the time to check all 1,000 once through the real path (claim due endpoints in one
statement, check them in batches concurrently with aiohttp, bulk-write results and statuses),
checks/s, CPU used, and the lateness p99 of a 60 s steady run where every endpoint is due at a
spread-out time and the dispatcher ticks every MONITORING_DISPATCH_EVERY_SECONDS. Peer: the
Celery round-trip ceiling (~950 task executions/s on this box, ../shared/bench/peers/RESULTS.md
§5b), i.e. what one-task-per-check would top out at before doing any network work.
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PEERS, line, percentile, setup_django

N = int(os.environ.get("BENCH_MONITORING_ENDPOINTS", "1000"))
STEADY_SECONDS = int(os.environ.get("BENCH_MONITORING_STEADY_SECONDS", "60"))
PREFIX = "bench-mon-"


def peer_rate() -> float:
    text = (PEERS / "RESULTS.md").read_text()
    m = re.search(r"threads -c 8 \| delay \(apply_async each\) \| \*\*([\d,]+)\*\*", text)
    return float(m.group(1).replace(",", "")) if m else 950.0


def _serve(ports):
    from tests.monitoring.servers import LoopbackHTTP

    with LoopbackHTTP() as server:
        ports.put(server.port)
        server.thread.join()


def main():
    setup_django()
    from django.conf import settings
    from django.utils import timezone

    from apps.core.choices import OrgKind
    from apps.core.models import Event
    from apps.monitoring.models import CheckResult, Endpoint
    from apps.monitoring.services import checks_claim_due, checks_run_batch
    from apps.tenants.models import Organization

    def cleanup():
        Endpoint.objects.filter(tenant__slug__startswith=PREFIX).delete()
        Event.objects.filter(tenant__slug__startswith=PREFIX).delete()
        Organization.objects.filter(slug__startswith=PREFIX).delete()

    cleanup()
    tenant = Organization.objects.create(slug=f"{PREFIX}t", name="bench monitoring", kind=OrgKind.TENANT)
    import multiprocessing as mp

    # The loopback server runs in its own process so it does not share the checker's GIL.
    ports = mp.Queue()
    proc = mp.Process(target=_serve, args=(ports,), daemon=True)
    proc.start()
    port = ports.get(timeout=10)
    try:
        now = timezone.now()
        Endpoint.objects.bulk_create([
            Endpoint(tenant=tenant, name=f"e{i}", kind="http", host="127.0.0.1", port=port, path=f"/p{i}",
                     interval_seconds=60, timeout_seconds=5, next_check_at=now)
            for i in range(N)
        ])

        def tick(at=None):
            claimed = checks_claim_due(now=at)
            size = settings.MONITORING_BATCH_SIZE
            for s in range(0, len(claimed), size):
                chunk = claimed[s:s + size]
                checks_run_batch(endpoint_ids=[c[0] for c in chunk], scheduled={c[0]: c[2] for c in chunk})
            return len(claimed)

        # 1) burst: all N due at once
        cpu0, t0 = time.process_time(), time.perf_counter()
        done = tick()
        burst = time.perf_counter() - t0
        burst_cpu = time.process_time() - cpu0
        assert done == N and CheckResult.objects.filter(endpoint__tenant=tenant).count() == N
        up = Endpoint.objects.filter(tenant=tenant, status="up").count()

        # 2) steady: next checks spread over one interval; tick every few seconds for STEADY_SECONDS
        start = timezone.now()
        ids = list(Endpoint.objects.filter(tenant=tenant).values_list("pk", flat=True))
        for i, pk in enumerate(ids):
            Endpoint.objects.filter(pk=pk).update(next_check_at=start + timedelta(seconds=STEADY_SECONDS * i / N))
        CheckResult.objects.filter(endpoint__tenant=tenant).delete()
        every = settings.MONITORING_DISPATCH_EVERY_SECONDS
        cpu1, t1 = time.process_time(), time.perf_counter()
        while time.perf_counter() - t1 < STEADY_SECONDS + every:
            tick_started = time.perf_counter()
            tick()
            time.sleep(max(0.0, every - (time.perf_counter() - tick_started)))
        steady_wall = time.perf_counter() - t1
        steady_cpu = time.process_time() - cpu1
        rows = list(CheckResult.objects.filter(endpoint__tenant=tenant, scheduled_at__isnull=False)
                    .values_list("checked_at", "scheduled_at"))
        lateness = [(c - s).total_seconds() for c, s in rows]
    finally:
        proc.terminate()
        proc.join(5)
        cleanup()

    rate = N / burst
    peer = peer_rate()
    line(
        "monitoring_dispatch",
        endpoints=N, burst_all_once_s=round(burst, 2), checks_per_s=round(rate, 1), burst_cpu_s=round(burst_cpu, 2), checks_per_cpu_s=round(N / burst_cpu, 1),
        up=up, steady_checks=len(lateness), steady_window_s=round(steady_wall, 1),
        lateness_p50_s=round(percentile(lateness, 50), 2), lateness_p99_s=round(percentile(lateness, 99), 2),
        steady_cpu_pct=round(100 * steady_cpu / steady_wall, 1),
        peer_celery_task_per_s=peer, ratio_vs_celery_per_task=round(rate / peer, 2),
    )


if __name__ == "__main__":
    main()
