"""The production topology, for real: beat and two Celery workers on different queues (`jobs`;
`notifications` + `default`) against PostgreSQL and a private Redis.

1. Each task kind lands on its queue: job runs only on the jobs worker, deliveries and beat's
   sweepers on the other (both workers' logs, and each worker's own task metrics served on
   CELERY_METRICS_PORT). Nothing runs twice: every (run, target) step and every delivery reaches
   the loopback HTTP sink exactly once.
2. kill -9 of the notifications worker in the middle of a batch of slow deliveries: a new
   notifications worker comes up, the unacked messages come back and beat's sweeper re-queues the
   claims of the dead worker; every delivery ends sent (nothing lost). Sends that were in flight
   at the kill may be repeated (at-least-once: the request left, the "sent" mark did not); no
   other delivery is sent twice.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import wait_for
from tests.faults.harness import BIN, Proc, broker_app, free_port, portal_env, start_worker, worker_ready

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


class Sink(BaseHTTPRequestHandler):
    """Records every request (path, the webhook id of a delivery); /slow/ answers after a pause."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    delay = 0.0

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Sink.lock:
            Sink.seen.append((self.path, self.headers.get("webhook-id", "")))
        if Sink.delay:
            time.sleep(Sink.delay)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def sink():
    Sink.seen, Sink.delay = [], 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _metrics(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def _tasks_counted(text: str) -> dict[tuple[str, str], float]:
    """{(task, queue): tasks run} from a worker's opsportal_task_runtime_seconds histogram."""
    import re

    out = {}
    for labels, value in re.findall(r"^opsportal_task_runtime_seconds_count\{([^}]*)\} (\S+)$", text, re.M):
        got = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(got["task"], got["queue"])] = float(value)
    return out


def _received(log_text: str) -> Counter:
    """Tasks received, by name, in a whole worker log (Proc.output() keeps only its tail)."""
    import re

    return Counter(re.findall(r"Task ([a-z_]+\.[a-z_]+)\[[0-9a-f-]+\] received", log_text))


def _hook_team(world, sink_url: str, n: int):
    """n users of tenant a, each with a personal webhook to the sink (in-app + webhook)."""
    from django.contrib.auth import get_user_model

    from apps.core.crypto import encrypt
    from apps.notifications.models import ChannelConfig, Preference
    from apps.tenants.models import Membership

    tenant = world.tenant("a")
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"hook{i}", email=f"hook{i}@x.test") for i in range(n)]
    )
    Membership.objects.bulk_create([Membership(user=u, organization=tenant, role="viewer") for u in users])
    ChannelConfig.objects.bulk_create(
        [
            ChannelConfig(
                tenant=tenant,
                name=f"hook-{u.pk}",
                kind="webhook",
                user=u,
                url=encrypt(sink_url + "/hook"),
                signing_secret=encrypt("k"),
            )
            for u in users
        ]
    )
    Preference.objects.bulk_create([Preference(tenant=tenant, user=u, channels=["in_app", "webhook"]) for u in users])
    return tenant, [u.pk for u in users]


def test_two_workers_on_their_queues_share_the_work_and_a_killed_one_loses_nothing(
    world, private_redis, test_db_url, tmp_path, sink, monkeypatch
):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from apps.notifications import services as notify
    from apps.notifications.models import Delivery
    from apps.targets.choices import OverlapPolicy, RunStatus, StepStatus
    from apps.targets.models import Job, JobRun, JobRunStep
    from apps.targets.services.runs import job_run_create
    from tests.factories.targets import make_job, make_target

    # The test process' Celery is eager: work is sent to the private broker below instead.
    monkeypatch.setattr("apps.targets.services.runs._enqueue", lambda run_id, countdown=None: None)
    monkeypatch.setattr(notify, "_enqueue_after_commit", lambda result: None)
    env = portal_env(
        database_url=test_db_url,
        redis_url=private_redis.url,
        CELERY_VISIBILITY_TIMEOUT=3,
        NOTIFICATIONS_SWEEP_AFTER=1,
        NOTIFICATIONS_CLAIM_TIMEOUT=4,
        NOTIFICATIONS_DELIVERY_BATCH=5,
        NOTIFICATIONS_RATE_LIMIT_COUNT=1000,
        TARGETS_FLUSH_SECONDS=0.3,
    )
    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    for name, task in (
        ("sweep deliveries", "notifications.sweep_deliveries"),
        ("reap runs", "targets.reap_runs"),
        ("sweep events", "core.sweep_events"),
    ):
        PeriodicTask.objects.create(name=name, task=task, interval=every)

    client = broker_app(private_redis.url)
    ports = {"jobs": free_port(), "notif": free_port(), "notif2": free_port()}
    # the jobs worker in Prometheus multiprocess mode (as compose runs workers), the other without
    jobs_env = {**env, "CELERY_METRICS_PORT": str(ports["jobs"]), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom-jobs")}
    jobs = start_worker(jobs_env, tmp_path / "jobs.log", queues="jobs", name="jobs")
    notif = start_worker(
        {**env, "CELERY_METRICS_PORT": str(ports["notif"])}, tmp_path / "notif.log", queues="notifications,default", name="notif"
    )
    beat = Proc(
        [str(BIN / "celery"), "-A", "config", "beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")],
        env,
        tmp_path / "beat.log",
    )
    notif2 = None
    try:
        worker_ready(jobs, timeout=60)
        worker_ready(notif, timeout=60)

        # -- 1. routing and exactly-once ---------------------------------------------------------
        tenant = world.tenant("a")
        targets = [make_target(tenant, name=f"node{i}") for i in range(4)]
        job = make_job(
            tenant,
            name="fan",
            steps=[
                {
                    "type": "http.request",
                    "url": sink.rstrip("/") + "/job/{{ target.name }}",
                    "headers": {"X-Run": "x"},
                    "expected_status": 200,
                },
            ],
        )
        Job.objects.filter(pk=job.pk).update(overlap_policy=OverlapPolicy.PARALLEL)
        job.refresh_from_db()
        runs = [job_run_create(job, actor=world.user("a", "admin"), targets=targets) for _ in range(3)]
        for run in runs:
            client.send_task("targets.execute_run", args=[run.pk])  # routed by the portal's table: jobs
        _, user_ids = _hook_team(world, sink, 20)
        notify.notify_team(tenant=tenant, team_members=user_ids, title="scale", message="out", priority="high")
        ids = list(Delivery.objects.filter(kind="webhook").values_list("pk", flat=True))
        assert len(ids) == 20
        client.send_task("notifications.deliver", args=[ids[:10]])
        client.send_task("notifications.deliver", args=[ids[10:]])

        wait_for(lambda: JobRun.objects.filter(pk__in=[r.pk for r in runs], status=RunStatus.SUCCEEDED).count() == 3, timeout=90)
        wait_for(lambda: Delivery.objects.filter(pk__in=ids, status="sent").count() == 20, timeout=60)
        wait_for(
            lambda: (
                "notifications.sweep_deliveries" in _received(notif.log.read_text(errors="replace"))
                and "core.sweep_events" in _received(notif.log.read_text(errors="replace"))
                and "targets.reap_runs" in _received(jobs.log.read_text(errors="replace"))
            ),
            timeout=30,
        )
        job_paths = Counter(p for p, _ in Sink.seen if p.startswith("/job/"))
        assert job_paths == {f"/job/node{i}": 3 for i in range(4)}  # 3 runs × 4 targets, each once
        assert JobRunStep.objects.filter(run__in=runs, status=StepStatus.SUCCEEDED).count() == 12
        hooks = Counter(h for p, h in Sink.seen if p == "/hook")
        assert len(hooks) == 20 and set(hooks.values()) == {1}, hooks

        on_jobs, on_notif = _received(jobs.log.read_text(errors="replace")), _received(notif.log.read_text(errors="replace"))
        assert on_jobs["targets.execute_run"] == 3 and not [t for t in on_jobs if not t.startswith("targets.")], on_jobs
        assert on_notif["notifications.deliver"] >= 2 and not [t for t in on_notif if t.startswith("targets.")], on_notif
        counted_jobs, counted_notif = _tasks_counted(_metrics(ports["jobs"])), _tasks_counted(_metrics(ports["notif"]))
        assert counted_jobs.get(("targets.execute_run", "jobs")) == 3, _metrics(ports["jobs"])[-3000:]
        assert counted_notif[("notifications.deliver", "notifications")] >= 2
        assert counted_notif.get(("core.sweep_events", "default"), 0) >= 1
        assert not [k for k in counted_jobs if k[1] != "jobs"] and not [k for k in counted_notif if k[1] == "jobs"]

        # -- 2. kill -9 the notifications worker mid-batch -----------------------------------------
        Sink.seen, Sink.delay = [], 0.5
        notify.notify_team(  # a second round: 20 slow deliveries
            tenant=tenant, team_members=user_ids, title="second", message="round", priority="high"
        )
        second = list(Delivery.objects.filter(kind="webhook").exclude(pk__in=ids).values_list("pk", flat=True))
        assert len(second) == 20
        for i in range(0, 20, 5):
            client.send_task("notifications.deliver", args=[second[i : i + 5]])
        wait_for(lambda: len([1 for p, _ in Sink.seen if p == "/hook"]) >= 4, timeout=30)
        notif.kill9()
        in_flight = len([1 for p, _ in Sink.seen if p == "/hook"])
        assert Delivery.objects.filter(pk__in=second, status="sent").count() < 20  # the kill did interrupt work
        notif2 = start_worker(env, tmp_path / "notif2.log", queues="notifications,default", name="notif2")
        worker_ready(notif2, timeout=60)
        wait_for(lambda: Delivery.objects.filter(pk__in=second, status="sent").count() == 20, timeout=90)
    finally:
        for proc in (beat, jobs, notif, notif2):
            if proc is not None:
                proc.stop()

    hooks = Counter(h for p, h in Sink.seen if p == "/hook")
    assert len(hooks) == 20  # every delivery reached the sink
    repeated = sum(v - 1 for v in hooks.values())
    assert repeated <= in_flight, (repeated, in_flight)
    assert not Delivery.objects.filter(pk__in=second).exclude(status="sent").exists()
    print(
        f"\nSCALE-OUT: 3 runs x 4 targets on jobs, 20+20 deliveries on notifications; after kill -9 "
        f"{in_flight} in flight, {repeated} sent again, 0 lost"
    )
