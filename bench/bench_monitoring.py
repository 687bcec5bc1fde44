"""Endpoint checks on ONE worker process (`celery worker -P threads -c 4 -Q monitoring`) against
a loopback HTTP server, the bench acting as beat (`monitoring.dispatch_due_checks` every
MONITORING_DISPATCH_EVERY_SECONDS).

1. burst: BURST endpoints all due at once, twice (cold, then warm keep-alive pool); time from the
   dispatch task sent to the last result row: checks/s and worker CPU per check.
2. soak: ENDPOINTS endpoints at a 60 s interval for SOAK seconds, each on its own slot (the
   claim's phase; the steady state the claim converges to); lateness = checked_at − the
   endpoint's slot, p50/p99; worker and PostgreSQL CPU per check; slots missed (slots before the
   end of the window that no result arrived for; beat keeps ticking until a tick at or after the end).
Data: skewed tenants (one holds half the endpoints), 2 % of endpoints failing (503: down events
once), HISTORY old result rows. Peer, same run: Celery's one-task-per-item ceiling on one worker
process (`peers/celery_throughput_peer.sh`, prefork -c 1, apply_async per task).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = os.environ["REDIS_URL"] = REDIS

from bench.common import BENCH_DB, PEERS, ROOT, PostgresCpu, line, percentile, process_cpu_seconds, setup_django  # noqa: E402

ENDPOINTS = int(os.environ.get("BENCH_MONITORING_ENDPOINTS", "10000"))
BURST = int(os.environ.get("BENCH_MONITORING_BURST", "1000"))
SOAK = int(os.environ.get("BENCH_MONITORING_SOAK_SECONDS", "150"))
HISTORY = int(os.environ.get("BENCH_MONITORING_HISTORY", "300000"))
THREADS = int(os.environ.get("BENCH_MONITORING_WORKER_THREADS", "4"))
PREFIX = "bench-mon-"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nall good"
FAIL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy"


class _Http(asyncio.Protocol):
    """A keep-alive HTTP/1.1 responder (GET, no request bodies): /fail… answers 503."""

    def connection_made(self, transport):
        self.transport, self.buf = transport, b""

    def data_received(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.transport.write(FAIL if head.split(b" ", 2)[1].startswith(b"/fail") else OK)


def _serve(ports):
    async def main():
        server = await asyncio.get_running_loop().create_server(_Http, "127.0.0.1", 0, backlog=4096)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start_worker() -> subprocess.Popen:
    from config.celery import app

    name = f"{PREFIX}{os.getpid()}"
    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60"}
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "-P", "threads", "-c", str(THREADS), "-Q", "monitoring",
         "--loglevel=WARNING", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not app.control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
    return proc


def peer_celery_per_task() -> float:
    """Celery no-op tasks/s on one prefork process, one apply_async each (same run)."""
    # its own broker (PEER_BROKER): Celery would take CELERY_BROKER_URL from the environment first
    env = {**{k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL")}, "N": "3000", "RUNS": "1", "POOLS": "prefork:1", "MODES": "delay", "REDIS_PORT": os.environ.get("BENCH_PEER_REDIS_PORT", "6409"),
           "VENV": str(ROOT / ".venv")}
    out = subprocess.run(["bash", str(PEERS / "celery_throughput_peer.sh")], cwd=PEERS, env=env, capture_output=True,
                         text=True, timeout=600)
    m = re.search(r"mode=delay .*?tasks_per_s=([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"celery peer failed: {out.stderr[-1500:]}")
    return float(m.group(1))


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.02)


def seed(port):
    """Skewed tenants (one holds half), 2 % failing endpoints, HISTORY old results."""
    from django.db import connection

    from apps.core.choices import OrgKind
    from apps.monitoring.models import Endpoint
    from apps.tenants.models import Organization

    tenants = [Organization.objects.create(slug=f"{PREFIX}{i}", name=f"bench mon {i}", kind=OrgKind.TENANT) for i in range(20)]
    rows = []
    for i in range(ENDPOINTS + BURST):
        tenant = tenants[0] if i % 2 == 0 else tenants[1 + i % 19]
        path = f"/fail/{i}" if i % 50 == 7 else f"/p{i}"
        rows.append(Endpoint(tenant=tenant, name=f"e{i}", kind="http", host="127.0.0.1", port=port, path=path,
                             interval_seconds=60, timeout_seconds=5, next_check_at=None))
    made = Endpoint.objects.bulk_create(rows, batch_size=2000)
    soak, burst = [e.pk for e in made[:ENDPOINTS]], [e.pk for e in made[ENDPOINTS:]]
    with connection.cursor() as cursor:  # a day of history for some endpoints: the indexes are not empty
        cursor.execute(
            "INSERT INTO monitoring_checkresult (endpoint_id, checked_at, scheduled_at, status, latency_ms, error, in_maintenance) "
            "SELECT (%s::bigint[])[1 + g %% %s], now() - make_interval(secs => g %% 86400), NULL, 'up', 3.0, '', false "
            "FROM generate_series(1, %s) g", [soak, len(soak), HISTORY])
    return soak, burst


def burst_round(burst_ids, worker):
    from django.utils import timezone

    from apps.monitoring.models import CheckResult, Endpoint
    from apps.monitoring.tasks import dispatch_due_checks_task

    before = CheckResult.objects.filter(endpoint_id__in=burst_ids).count()
    Endpoint.objects.filter(pk__in=burst_ids).update(next_check_at=timezone.now())
    cpu0, t0 = process_cpu_seconds(worker.pid), time.perf_counter()
    dispatch_due_checks_task.delay()
    wait_until(lambda: CheckResult.objects.filter(endpoint_id__in=burst_ids).count() >= before + len(burst_ids), 300)
    wall = time.perf_counter() - t0
    return wall, process_cpu_seconds(worker.pid) - cpu0


def soak_run(soak_ids, worker):
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from apps.monitoring.checking import next_slot
    from apps.monitoring.models import CheckResult
    from apps.monitoring.tasks import dispatch_due_checks_task

    start = timezone.now() + timedelta(seconds=2)
    slots = [next_slot(pk, 60, start - timedelta(seconds=60), start) for pk in soak_ids]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE monitoring_endpoint e SET next_check_at = v.at FROM unnest(%s::bigint[], %s::timestamptz[]) "
                       "AS v(id, at) WHERE e.id = v.id", [soak_ids, slots])
    every = settings.MONITORING_DISPATCH_EVERY_SECONDS
    end = start + timedelta(seconds=SOAK)
    with PostgresCpu(BENCH_DB.rsplit("/", 1)[1]) as pg:
        cpu0, t0 = process_cpu_seconds(worker.pid), time.perf_counter()
        while True:  # the bench is beat, until a tick at or after `end` claimed every slot before it
            dispatch_due_checks_task.delay()
            if timezone.now() >= end:
                break
            time.sleep(every)
        expected = sum(1 + int((end - s).total_seconds() // 60) for s in slots if s < end)
        rows = lambda: CheckResult.objects.filter(endpoint_id__in=soak_ids, scheduled_at__gte=start, scheduled_at__lt=end)  # noqa: E731
        with contextlib.suppress(RuntimeError):  # report what arrived: missed slots are a figure
            wait_until(lambda: rows().count() >= expected, 30)
        wall, cpu = time.perf_counter() - t0, process_cpu_seconds(worker.pid) - cpu0
    lateness = [(c - s).total_seconds() for c, s in rows().values_list("checked_at", "scheduled_at")]
    return lateness, expected, wall, cpu, pg.seconds


def cleanup():
    from django.db import connection

    from apps.core.models import Event
    from apps.monitoring.models import Endpoint
    from apps.tenants.models import Organization

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM monitoring_checkresult WHERE endpoint_id IN (SELECT e.id FROM monitoring_endpoint e "
                       "JOIN tenants_organization o ON o.id = e.tenant_id WHERE o.slug LIKE %s)", [PREFIX + "%"])
    Endpoint.objects.filter(tenant__slug__startswith=PREFIX).delete()
    Event.objects.filter(tenant__slug__startswith=PREFIX).delete()
    Organization.objects.filter(slug__startswith=PREFIX).delete()


def main():
    setup_django()
    from apps.monitoring.models import Endpoint
    from config.celery import app

    cleanup()
    ports = mp.Queue()
    server = mp.Process(target=_serve, args=(ports,), daemon=True)  # its own process: not the worker's CPU
    server.start()
    worker = None
    try:
        soak_ids, burst_ids = seed(ports.get(timeout=10))
        app.control.purge()
        worker = start_worker()
        cold_s, cold_cpu = burst_round(burst_ids, worker)
        warm_s, warm_cpu = burst_round(burst_ids, worker)
        up = Endpoint.objects.filter(pk__in=burst_ids, status="up").count()
        Endpoint.objects.filter(pk__in=burst_ids).update(enabled=False)
        lateness, expected, wall, cpu, pg_cpu = soak_run(soak_ids, worker)
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait()
        server.terminate()
        server.join(5)
        cleanup()
    peer = peer_celery_per_task()
    rate = BURST / warm_s
    n = len(lateness)
    line(
        "monitoring_dispatch",
        burst=BURST, burst_cold_s=round(cold_s, 2), burst_s=round(warm_s, 2), checks_per_s=round(rate, 1),
        burst_cold_checks_per_s=round(BURST / cold_s, 1), burst_worker_cpu_ms_per_check=round(1000 * warm_cpu / BURST, 3),
        burst_up=up, endpoints=ENDPOINTS, soak_s=SOAK, soak_checks=n, soak_missed=max(0, expected - n),
        lateness_p50_s=round(percentile(lateness, 50), 2), lateness_p99_s=round(percentile(lateness, 99), 2),
        lateness_max_s=round(max(lateness), 2) if lateness else float("nan"),
        soak_worker_cpu_s=round(cpu, 1), soak_worker_cpu_pct=round(100 * cpu / wall, 1),
        soak_worker_cpu_ms_per_check=round(1000 * cpu / max(n, 1), 3), soak_pg_cpu_ms_per_check=round(1000 * pg_cpu / max(n, 1), 3),
        peer_celery_task_per_s=peer, ratio_vs_celery_per_task=round(rate / peer, 2),
    )


if __name__ == "__main__":
    main()
