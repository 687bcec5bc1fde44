#!/usr/bin/env python
"""Throughput against worker processes: job fan-out and notification deliveries with 1, 2 and 4
Celery worker processes (`celery worker -P prefork -c N`, one queue each as deployed).

1. fan-out: RUNS job runs × TARGETS targets, one `http.request` step each against a loopback HTTP
   server that answers after SINK_MS (a remote endpoint's latency); time from enqueueing every run
   to the last run finished. Figure: steps (target × step) per second.
2. deliveries: DELIVER personal-webhook deliveries to the same server, enqueued in the usual
   batches (NOTIFICATIONS_DELIVERY_BATCH); time to the last row marked sent. Figure: deliveries/s.

Each N gets a fresh worker; the rows are removed afterwards. Prints one line per N and a summary
line with the ratios to N=1. BENCH_SCALE_PROCS=1,2,4 chooses the points.
"""

from __future__ import annotations

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

from bench.common import BENCH_DB, ROOT, line, process_cpu_seconds, setup_django  # noqa: E402

RUNS = int(os.environ.get("BENCH_SCALE_RUNS", 40))
TARGETS = int(os.environ.get("BENCH_SCALE_TARGETS", 10))
DELIVER = int(os.environ.get("BENCH_SCALE_DELIVER", 2000))
SINK_MS = float(os.environ.get("BENCH_SCALE_SINK_MS", 20))
PROCS = [int(p) for p in os.environ.get("BENCH_SCALE_PROCS", "1,2,4").split(",")]
PREFIX = f"bs{os.getpid()}"


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(SINK_MS / 1000)
        with Sink.lock:
            Sink.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 4 processes x 16 sends in flight: the default backlog of 5 resets connections


def start_worker(queue: str, procs: int, name: str) -> subprocess.Popen:
    from config.celery import app

    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "60"}
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "config",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(procs),
            "-Q",
            queue,
            "--loglevel=WARNING",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while not app.control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not start")
    return proc


def worker_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds of the worker's main process and its pool processes so far."""
    total = process_cpu_seconds(proc.pid, children=True)
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        for pid in f.read().split():
            total += process_cpu_seconds(int(pid))
    return total


def stop(proc: subprocess.Popen) -> None:
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_until(predicate, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.05)


def main():
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.core.crypto import encrypt
    from apps.notifications import services as notify
    from apps.notifications.models import ChannelConfig, Delivery, Preference
    from apps.targets.choices import OverlapPolicy, RunStatus
    from apps.targets.models import Job, JobRun, JobVersion, Target
    from apps.targets.services import runs as runs_module
    from apps.targets.services.runs import _enqueue, job_run_create
    from apps.tenants.models import Membership, Organization
    from config.celery import app

    server = Server(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    tenant = Organization.objects.create(kind="tenant", slug=PREFIX, name=f"{PREFIX} scale-out")
    User = get_user_model()
    results = {}
    enqueue_after_commit = notify._enqueue_after_commit
    try:
        targets = Target.objects.bulk_create(
            [Target(tenant=tenant, name=f"n{i}", hostname="127.0.0.1", port=22) for i in range(TARGETS)]
        )
        job = Job.objects.create(tenant=tenant, name=f"{PREFIX}-fan", overlap_policy=OverlapPolicy.PARALLEL)
        version = JobVersion.objects.create(
            job=job, number=1, steps=[{"type": "http.request", "url": url + "/job/{{ target.name }}", "expected_status": 200}]
        )
        Job.objects.filter(pk=job.pk).update(current_version=version)
        job.refresh_from_db()
        users = User.objects.bulk_create(
            [User(username=f"{PREFIX}-{i}", email=f"{PREFIX}-{i}@bench.test") for i in range(DELIVER)], batch_size=2000
        )
        Membership.objects.bulk_create([Membership(user=u, organization=tenant, role="viewer") for u in users], batch_size=2000)
        sealed_url, sealed_key = encrypt(url + "/hook"), encrypt("bench-key")
        ChannelConfig.objects.bulk_create(
            [
                ChannelConfig(
                    tenant=tenant, name=f"hook-{u.pk}", kind="webhook", user=u, url=sealed_url, signing_secret=sealed_key
                )
                for u in users
            ],
            batch_size=2000,
        )
        Preference.objects.bulk_create(
            [Preference(tenant=tenant, user=u, channels=["in_app", "webhook"]) for u in users], batch_size=2000
        )
        member_ids = [u.pk for u in users]
        app.control.purge()

        for n in PROCS:
            # -- job fan-out ------------------------------------------------------------------
            worker = start_worker("jobs", n, f"{PREFIX}-jobs{n}")
            try:
                runs_module._enqueue = lambda run_id, countdown=None: None  # rows first, then the clock
                try:
                    ids = [job_run_create(job, actor=None, targets=targets).pk for _ in range(RUNS)]
                finally:
                    runs_module._enqueue = _enqueue
                cpu0, start = worker_cpu(worker), time.perf_counter()
                for pk in ids:
                    _enqueue(pk)
                wait_until(
                    lambda ids=ids: (
                        JobRun.objects.filter(pk__in=ids, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).count() == RUNS
                    )
                )
                fan_s, fan_cpu = time.perf_counter() - start, worker_cpu(worker) - cpu0
                failed = JobRun.objects.filter(pk__in=ids, status=RunStatus.FAILED).count()
            finally:
                stop(worker)
            # -- deliveries -------------------------------------------------------------------
            worker = start_worker("notifications", n, f"{PREFIX}-notif{n}")
            try:
                notify._enqueue_after_commit = lambda result: None  # rows first, then the clock
                try:
                    notify.notify_team(
                        tenant=tenant, team_members=member_ids, title=f"round {n}", message="scale", priority="high"
                    )
                finally:
                    notify._enqueue_after_commit = enqueue_after_commit
                pending = list(
                    Delivery.objects.filter(tenant=tenant, kind="webhook", status="pending").values_list("pk", flat=True)
                )
                cpu0, start = worker_cpu(worker), time.perf_counter()
                notify.enqueue_deliveries(pending)
                wait_until(lambda: Delivery.objects.filter(tenant=tenant, kind="webhook", status="sent").count() >= DELIVER)
                deliver_s, deliver_cpu = time.perf_counter() - start, worker_cpu(worker) - cpu0
            finally:
                stop(worker)
            with connection.cursor() as cur:
                cur.execute("DELETE FROM notifications_delivery WHERE tenant_id = %s", [tenant.pk])
                cur.execute("DELETE FROM notifications_notification WHERE tenant_id = %s", [tenant.pk])
            steps = RUNS * TARGETS
            results[n] = (steps / fan_s, DELIVER / deliver_s)
            print(flush=True)
            line(
                f"scaleout_procs{n}",
                worker_processes=n,
                runs=RUNS,
                targets=TARGETS,
                steps=steps,
                failed_runs=failed,
                fanout_s=round(fan_s, 2),
                steps_per_s=round(steps / fan_s, 1),
                worker_cpu_ms_per_step=round(fan_cpu * 1000 / steps, 2),
                deliveries=DELIVER,
                deliver_s=round(deliver_s, 2),
                deliveries_per_s=round(DELIVER / deliver_s, 1),
                worker_cpu_ms_per_delivery=round(deliver_cpu * 1000 / DELIVER, 2),
                load1=round(os.getloadavg()[0], 1),
                sink_ms=SINK_MS,
                cores=os.cpu_count(),
            )
        base = results[PROCS[0]]
        line(
            "scaleout",
            **{f"steps_x{n}": round(r[0] / base[0], 2) for n, r in results.items()},
            **{f"deliveries_x{n}": round(r[1] / base[1], 2) for n, r in results.items()},
        )
    finally:
        server.shutdown()
        with connection.cursor() as cur:
            cur.execute("DELETE FROM notifications_delivery WHERE tenant_id = %s", [tenant.pk])
            cur.execute("DELETE FROM notifications_notification WHERE tenant_id = %s", [tenant.pk])
            cur.execute("DELETE FROM notifications_channelconfig WHERE tenant_id = %s", [tenant.pk])
            cur.execute("DELETE FROM notifications_preference WHERE tenant_id = %s", [tenant.pk])
            cur.execute(
                "DELETE FROM targets_jobrunoutput WHERE step_id IN (SELECT s.id FROM targets_jobrunstep s "
                "JOIN targets_jobrun r ON r.id = s.run_id WHERE r.tenant_id = %s)",
                [tenant.pk],
            )
            cur.execute(
                "DELETE FROM targets_jobrunstep WHERE run_id IN (SELECT id FROM targets_jobrun WHERE tenant_id = %s)", [tenant.pk]
            )
            cur.execute("DELETE FROM targets_jobrun WHERE tenant_id = %s", [tenant.pk])
        Job.objects.filter(tenant=tenant).update(current_version=None)
        JobVersion.objects.filter(job__tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).delete()
        Target.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(organization=tenant).delete()
        User.objects.filter(username__startswith=f"{PREFIX}-").delete()
        tenant.delete()


if __name__ == "__main__":
    main()
