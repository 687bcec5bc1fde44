#!/usr/bin/env python
"""alerts_ingest: our bulk ingestion endpoint vs Alertmanager, same load shape.

Load (as ../shared/bench/peers/am_loadgen.py): N alerts in requests of B alerts, C concurrent
aiohttp clients with keep-alive, bodies serialised before the clock starts; about 10% of the
alerts repeat an earlier label set (dedup path). Our side: gunicorn on loopback against the
bench PostgreSQL database, authenticated by a per-tenant ingestion token; every alert is
durable in PostgreSQL when the response arrives. Alertmanager (in memory) runs in the same
run through alertmanager_peer.sh with the same N/B/C when /usr/bin/prometheus-alertmanager exists.
Env: ALERTS_BENCH_N (100000, issue #5's load), ALERTS_BENCH_B (100), ALERTS_BENCH_C (8),
ALERTS_BENCH_WORKERS (default: the deployment's, config/gunicorn.conf.py — gunicorn starts with
that file as the image does, so the figure is the configuration a deployment runs).
gunicorn keeps its database connections as in production (DB_CONN_MAX_AGE=60; DJANGO_ENV=test
would reconnect per request). The bench database is vacuumed before the run (this machine's
PostgreSQL runs without autovacuum, so earlier runs' deleted rows would otherwise pile up).
Besides the rates the line gives CPU per request of B alerts — cpu_ms_web (gunicorn),
cpu_ms_pg (the PostgreSQL backends of the bench database, sampled), cpu_ms_client and
alertmanager_cpu_ms (its server process), alertmanager_client_cpu_ms — which a busy shared
machine disturbs less than the rates; `cpu_ratio` is Alertmanager's total CPU per request over
ours (server, database and load generator), the ratio of the rates on a saturated, otherwise
quiet machine. `load1` is the 1-minute load average when our run ended.

ALERTS_BENCH_CASE=resend (line `alerts_resend`, issue 23): a Prometheus-shaped resend stream —
ALERTS_RESEND_SERIES (5000) firing series resent every ALERTS_RESEND_INTERVAL (15) s for
ALERTS_RESEND_ROUNDS-1 (8) rounds, 2 % changing state per round — sent in each slot to us, then
the same bodies to an Alertmanager started as alertmanager_peer.sh starts it (kept for the whole
stream). Rates and CPU are over the resend rounds (round 0 fires every series: `fresh_*`);
`writes_per_unchanged` is the rows inserted + updated in alerts_alert (pg_stat_user_tables, read
after every backend has flushed its counts) beyond one per change, per unchanged resend.
Tenant skew, as in production: ALERTS_RESEND_SKEW (100000) open alerts of another, large tenant
are written and analyzed before the resending tenant exists, so the planner's statistics have
never seen it (0: no other tenant).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, PEERS, ROOT, PostgresCpu, line, percentile, setup_django

N = int(os.environ.get("ALERTS_BENCH_N", 100000))
B = int(os.environ.get("ALERTS_BENCH_B", 100))
C = int(os.environ.get("ALERTS_BENCH_C", 8))
WORKERS = os.environ.get("ALERTS_BENCH_WORKERS", "")  # empty: config/gunicorn.conf.py decides
# a Redis database no helper or test run flushes while we measure (tests clear theirs per test)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def bodies(run_id: str) -> tuple[list[bytes], int]:
    now = datetime.now(UTC).isoformat()
    sev = ("critical", "warning", "info")
    out, batch, distinct = [], [], set()
    for j in range(N):
        k = j - 1000 if j % 10 == 9 and j >= 1000 else j  # ~10% repeat an earlier alert
        distinct.add(k)
        batch.append({
            "labels": {"alertname": f"HighLatency{k % 50}", "instance": f"host-{run_id}-{k}:9100",
                       "severity": sev[k % 3], "tenant": f"tenant-{k % 20}"},
            "annotations": {"summary": f"latency above threshold on host-{k}", "description": "p99 > 500ms for 5m"},
            "startsAt": now,
        })
        if len(batch) == B:
            out.append(json.dumps(batch).encode())
            batch = []
    if batch:
        out.append(json.dumps(batch).encode())
    return out, len(distinct)


async def load(url: str, token: str, payloads: list[bytes]) -> dict:
    import aiohttp

    lat, errors, idx = [], 0, 0
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    async def worker(session):
        nonlocal idx, errors
        while idx < len(payloads):
            body = payloads[idx]
            idx += 1
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
                    if errors < 3:
                        print(r.status, (await r.text())[:300], file=sys.stderr)
            lat.append(time.perf_counter() - t)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=C)) as s:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(s) for _ in range(C)))
        el = time.perf_counter() - t0
    return {"seconds": el, "errors": errors, "p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def alertmanager_peer() -> tuple[float | None, float | None, float | None]:
    """(alerts/s, server CPU ms per request, load generator CPU ms per request) of Alertmanager
    under the same load."""
    if not Path("/usr/bin/prometheus-alertmanager").exists():
        return None, None, None
    out = subprocess.run(["bash", str(PEERS / "alertmanager_peer.sh")], cwd=PEERS, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "N": str(N), "B": str(B), "C": str(C), "RUNS": "1", "VENV": str(ROOT / ".venv")})
    m = re.search(r"alerts_per_s=([0-9.]+)", out.stdout)
    cpu = re.search(r'"server_cpu_s": ([0-9.]+)', out.stderr)
    client = re.search(r'"client_cpu_s": ([0-9.]+)', out.stderr)
    requests = -(-N // B)
    return ((float(m.group(1)) if m else None), (float(cpu.group(1)) * 1000 / requests if cpu else None),
            (float(client.group(1)) * 1000 / requests if client else None))


def proc_cpu(pid: int) -> float:
    """utime+stime seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gunicorn_cpu(master: int) -> float:
    """CPU seconds of gunicorn: the master, its live workers and those it has reaped."""
    total = proc_cpu(master)
    try:
        fields = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return total
    return total + sum(proc_cpu(int(pid)) for pid in children)


def worker_count(master: int) -> int:
    try:
        return len(Path(f"/proc/{master}/task/{master}/children").read_text().split())
    except OSError:
        return 0


def start_gunicorn(port: int) -> subprocess.Popen:
    """gunicorn as the image starts it (config/gunicorn.conf.py) on the bench database."""
    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
           "REDIS_URL": REDIS, "CELERY_BROKER_URL": REDIS, "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING",
           # production keeps connections (DB_CONN_MAX_AGE defaults to 60 outside DJANGO_ENV=test)
           # and coalesces dispatches (off under DJANGO_ENV=test, for the tests)
           "DB_CONN_MAX_AGE": "60", "EVENTS_DISPATCH_COALESCE_MS": os.environ.get("EVENTS_DISPATCH_COALESCE_MS", "10")}
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi:application", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30", *(["-w", WORKERS] if WORKERS else [])],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )


def main() -> None:
    setup_django()
    from django.db import connection

    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind
    from apps.core.models import Event
    from apps.tenants.models import Organization

    with connection.cursor() as cur:  # earlier runs' dead rows (no autovacuum here); outside the clock
        cur.execute("VACUUM ANALYZE alerts_alert")
        cur.execute("VACUUM ANALYZE core_event")
    slug = f"bench-alerts-{uuid.uuid4().hex[:6]}"
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=slug, name=slug)
    token, raw = ingest_token_create(actor=None, tenant=tenant, name="bench")
    port = int(os.environ.get("ALERTS_BENCH_PORT") or free_port())
    server = start_gunicorn(port)
    try:
        wait_http(port)
        payloads, distinct = bodies(uuid.uuid4().hex[:8])
        deadline = time.monotonic() + 30
        while worker_count(server.pid) < (int(WORKERS) if WORKERS else 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = worker_count(server.pid)
        # warm-up, not counted: enough concurrent requests to reach every worker (imports, DB
        # connections, prepared statements)
        warm = [json.dumps([{"labels": {"alertname": "warmup", "i": str(i)}}]).encode() for i in range(workers * 20)]
        asyncio.run(load(f"http://127.0.0.1:{port}/api/v1/alerts/ingest", raw, warm))
        Alert.objects.filter(tenant=tenant).delete()
        with PostgresCpu(BENCH_DB.rsplit("/", 1)[1]) as pg:
            web0, client0 = gunicorn_cpu(server.pid), time.process_time()
            res = asyncio.run(load(f"http://127.0.0.1:{port}/api/v1/alerts/ingest", raw, payloads))
            web1, client1 = gunicorn_cpu(server.pid), time.process_time()
        load1 = os.getloadavg()[0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    rows = Alert.objects.filter(tenant=tenant).count()
    occurrences_ok = rows == distinct
    ours = N / res["seconds"]
    peer, peer_cpu, peer_client_cpu = alertmanager_peer()
    requests = len(payloads)
    # A new backend for the clean-up: this one deleted the warm-up alerts while the table was
    # nearly empty, and PostgreSQL keeps the foreign-key triggers' plans (a sequential scan then)
    # for the backend's life; with autovacuum off nothing re-plans them, and 99,900 deletes
    # each scanning the table kept COMMIT busy for many minutes.
    connection.close()
    Alert.objects.filter(tenant=tenant).delete()
    Event.objects.filter(tenant=tenant).delete()
    token.delete()
    tenant.delete()
    try:
        import redis

        redis.Redis.from_url(REDIS).delete("default", "notifications", "jobs", "monitoring")
    except Exception:
        pass
    figures = dict(alerts_per_s=round(ours), n=N, batch=B, conc=C, workers=workers, p50_ms=res["p50"], p99_ms=res["p99"],
                   errors=res["errors"], rows=rows, distinct=distinct, dedup_ok=occurrences_ok,
                   # CPU per request of 100 alerts: gunicorn (Python), PostgreSQL backends, this load generator
                   cpu_ms_web=(web1 - web0) * 1000 / requests, cpu_ms_pg=pg.seconds * 1000 / requests,
                   cpu_ms_client=(client1 - client0) * 1000 / requests, load1=load1)
    if peer:
        figures.update(alertmanager_alerts_per_s=round(peer), ratio=ours / peer, peer="same_run")
        if peer_cpu:
            figures.update(alertmanager_cpu_ms=peer_cpu)
        if peer_cpu and peer_client_cpu:
            # the ratio of the two rates on a saturated, otherwise quiet machine: CPU per request
            # (server + load generator) of each side; the rates above depend on what else runs
            ours_cpu = figures["cpu_ms_web"] + figures["cpu_ms_pg"] + figures["cpu_ms_client"]
            figures.update(alertmanager_client_cpu_ms=peer_client_cpu, cpu_ratio=(peer_cpu + peer_client_cpu) / ours_cpu)
    else:
        figures.update(alertmanager_alerts_per_s=69635, ratio=ours / 69635, peer="RESULTS.md")
    line("alerts_ingest", **figures)


# -- the resend-heavy case (issue 23 item 5): ALERTS_BENCH_CASE=resend --------------------------
SERIES = int(os.environ.get("ALERTS_RESEND_SERIES", 5000))
SKEW = int(os.environ.get("ALERTS_RESEND_SKEW", 100000))
SKEW_SQL = """INSERT INTO alerts_alert (tenant_id, created_at, updated_at, alert_type, severity, status, source, title, message,
    object_id, resource_type, resource_id, labels, annotations, generator_url, fingerprint, occurrences, first_seen, last_seen,
    silenced, escalation_step, escalation_round, metadata)
SELECT %s, now(), now(), 'external', 'warning', 'firing', 'ingest', 'Other tenant', '', '', '', '', '{}', '{}', '',
    md5('big' || g), 1, now(), now(), false, 0, 0, '{}' FROM generate_series(1, %s) g"""
ROUNDS = int(os.environ.get("ALERTS_RESEND_ROUNDS", 9))  # round 0 fires every series; the others resend
INTERVAL = float(os.environ.get("ALERTS_RESEND_INTERVAL", 15))
FLIP = int(os.environ.get("ALERTS_RESEND_FLIP", 50))  # series ending per round; last round's fire again: 2 % change
AM_CONFIG = "route:\n  receiver: dead\nreceivers:\n  - name: dead\n    webhook_configs:\n      - url: http://127.0.0.1:1/dead\n"


def resend_rounds(run_id: str) -> list[list[bytes]]:
    """ROUNDS rounds of SERIES Prometheus-style alerts (am_loadgen's labels and annotations), in
    requests of B: every round resends every firing series with its own startsAt; FLIP series end
    (endsAt in the past) and the FLIP ended in the round before fire again (a new startsAt)."""
    now = datetime.now(UTC)
    sev = ("critical", "warning", "info")
    starts = {i: (now - timedelta(minutes=10)).isoformat() for i in range(SERIES)}
    out = []
    for r in range(ROUNDS):
        ending = range((r - 1) * FLIP, r * FLIP) if r else range(0)
        refire = range((r - 2) * FLIP, (r - 1) * FLIP) if r >= 2 else range(0)
        for i in refire:
            starts[i] = (now - timedelta(seconds=ROUNDS - r)).isoformat()
        alerts = []
        for i in range(SERIES):
            alert = {"labels": {"alertname": f"HighLatency{i % 50}", "instance": f"host-{run_id}-{i}:9100",
                                "severity": sev[i % 3], "tenant": f"tenant-{i % 20}"},
                     "annotations": {"summary": f"latency above threshold on host-{i}", "description": "p99 > 500ms for 5m"},
                     "startsAt": starts[i]}
            if i in ending:
                alert["endsAt"] = now.isoformat()
            alerts.append(alert)
        out.append([json.dumps(alerts[k:k + B]).encode() for k in range(0, SERIES, B)])
    return out


def start_alertmanager(workdir: Path, port: int) -> subprocess.Popen:
    """Alertmanager as ../shared/bench/peers/alertmanager_peer.sh starts it (its config, clustering off)."""
    (workdir / "am.yml").write_text(AM_CONFIG)
    (workdir / "data").mkdir()
    proc = subprocess.Popen(["/usr/bin/prometheus-alertmanager", f"--config.file={workdir / 'am.yml'}",
                             f"--storage.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address=", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_http(port)
    return proc


def alert_table_writes(cur) -> int:
    """Rows inserted plus rows updated in alerts_alert so far (ended backends' stats flushed)."""
    cur.execute("SELECT pg_stat_clear_snapshot()")
    cur.execute("SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'alerts_alert'")
    return cur.fetchone()[0]


def run_rounds(ours_url: str, token: str, am_url: str, rounds: list[list[bytes]], server: subprocess.Popen, am) -> dict:
    """Each INTERVAL: the round to us (timed), then the same bodies to Alertmanager (timed)."""
    from django.db import connection

    fig = {"ours_s": 0.0, "am_s": 0.0, "errors": 0, "am_errors": 0, "web_cpu": 0.0, "am_cpu": 0.0}
    t0 = time.monotonic()
    for r, bodies in enumerate(rounds):
        time.sleep(max(0.0, t0 + r * INTERVAL - time.monotonic()))
        if r == 1:  # round 0's backends have been idle for seconds: their stats are flushed
            with connection.cursor() as cur:
                fig["writes0"] = alert_table_writes(cur)
        web0, am0 = gunicorn_cpu(server.pid), proc_cpu(am.pid)
        ours = asyncio.run(load(ours_url, token, bodies))
        web1 = gunicorn_cpu(server.pid)
        peer = asyncio.run(load(am_url, "", bodies))
        am1 = proc_cpu(am.pid)
        if r == 0:
            fig["fresh_alerts_per_s"], fig["fresh_am_alerts_per_s"] = SERIES / ours["seconds"], SERIES / peer["seconds"]
            continue
        fig["ours_s"] += ours["seconds"]
        fig["am_s"] += peer["seconds"]
        fig["errors"] += ours["errors"]
        fig["am_errors"] += peer["errors"]
        fig["web_cpu"] += web1 - web0
        fig["am_cpu"] += am1 - am0
    return fig


def resend_main() -> None:
    setup_django()
    import tempfile

    from django.db import connection

    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind
    from apps.core.models import Event
    from apps.tenants.models import Organization

    with connection.cursor() as cur:  # a killed run's large tenant
        for left in Organization.objects.filter(slug__startswith="bench-big-"):
            cur.execute("DELETE FROM alerts_alert WHERE tenant_id = %s", [left.pk])
            left.delete()
    big = Organization.objects.create(kind=OrgKind.TENANT, slug=f"bench-big-{uuid.uuid4().hex[:6]}", name="big")
    with connection.cursor() as cur:
        if SKEW:
            cur.execute(SKEW_SQL, [big.pk, SKEW])
        cur.execute("VACUUM ANALYZE alerts_alert")
    slug = f"bench-resend-{uuid.uuid4().hex[:6]}"
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=slug, name=slug)
    token, raw = ingest_token_create(actor=None, tenant=tenant, name="bench")
    rounds = resend_rounds(uuid.uuid4().hex[:8])
    # ALERTS_BENCH_PORT / ALERTS_BENCH_AM_PORT pin the ports (helpers sharing a machine); else free ones
    port = int(os.environ.get("ALERTS_BENCH_PORT") or free_port())
    am_port = int(os.environ.get("ALERTS_BENCH_AM_PORT") or free_port())
    server = start_gunicorn(port)
    workdir = Path(tempfile.mkdtemp(prefix="am-resend."))
    am = start_alertmanager(workdir, am_port)
    try:
        wait_http(port)
        time.sleep(2)
        warm = [json.dumps([{"labels": {"alertname": "warmup", "i": str(i)}}]).encode() for i in range(40)]
        asyncio.run(load(f"http://127.0.0.1:{port}/api/v1/alerts/ingest", raw, warm))
        Alert.objects.filter(tenant=tenant).delete()
        fig = run_rounds(f"http://127.0.0.1:{port}/api/v1/alerts/ingest", raw, f"http://127.0.0.1:{am_port}/api/v2/alerts",
                         rounds, server, am)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        os.killpg(am.pid, signal.SIGTERM)
        am.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    connection.close()  # our own backend's counts flushed too
    time.sleep(1)
    with connection.cursor() as cur:
        writes = alert_table_writes(cur) - fig["writes0"]
    report_resend(fig, writes, tenant)
    Alert.objects.filter(tenant=tenant).delete()
    Event.objects.filter(tenant=tenant).delete()
    token.delete()
    tenant.delete()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM alerts_alert WHERE tenant_id = %s", [big.pk])
    big.delete()


def report_resend(fig: dict, writes: int, tenant) -> None:
    """The line: rates of both sides over the resend rounds, and the database writes per unchanged resend."""
    from django.conf import settings

    from apps.alerts.models import Alert

    resent = SERIES * (ROUNDS - 1)
    # changes in the resend rounds: FLIP ends per round (an UPDATE each), FLIP new firing periods
    # from round 2 on (an INSERT each); everything else was an unchanged resend
    ended, refired = FLIP * (ROUNDS - 1), FLIP * max(0, ROUNDS - 2)
    unchanged = resent - ended - refired
    ours, peer = resent / fig["ours_s"], resent / fig["am_s"]
    requests = -(-SERIES // B) * (ROUNDS - 1)
    rows = Alert.objects.filter(tenant=tenant).count()
    line("alerts_resend", alerts_per_s=round(ours), alertmanager_alerts_per_s=round(peer), ratio=ours / peer, peer="same_run",
         series=SERIES, rounds=ROUNDS - 1, interval_s=INTERVAL, changed_per_round=2 * FLIP, batch=B, conc=C,
         errors=fig["errors"] + fig["am_errors"], rows=rows, rows_ok=rows == SERIES + refired,
         db_row_writes=writes, changed=ended + refired,
         writes_per_unchanged=(writes - ended - refired) / unchanged,
         last_seen_s=settings.ALERTS_INGEST_LAST_SEEN_SECONDS,
         cpu_ms_web=fig["web_cpu"] * 1000 / requests, alertmanager_cpu_ms=fig["am_cpu"] * 1000 / requests,
         fresh_alerts_per_s=round(fig["fresh_alerts_per_s"]), fresh_am_alerts_per_s=round(fig["fresh_am_alerts_per_s"]),
         other_tenant_open=SKEW, load1=os.getloadavg()[0])


if __name__ == "__main__":
    resend_main() if os.environ.get("ALERTS_BENCH_CASE") == "resend" else main()
