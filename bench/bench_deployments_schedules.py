"""Schedule fire lateness: 100 one-time deployment schedules due within the next 40 s, fired by a
real django-celery-beat DatabaseScheduler (embedded, `beat_max_loop_interval` 1 s as configured in
config/celery.py) and one real Celery worker (threads) on Redis. Lateness = when the fire task ran
(`last_fired_at`) − `scheduled_at`. The fired operations are refused on purpose (no runbook), so
only the scheduling path is measured.

Prints one line: deployments_schedule_fire: schedules=100 fired=… p50_s=… p99_s=… max_s=…
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ.setdefault("CELERY_BROKER_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
from common import line, setup_django

PREFIX = "bench-deploy-sched"
COUNT = 100
SPREAD_S = 40


def main() -> None:
    setup_django()
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)
    from celery.beat import EmbeddedService
    from celery.contrib.testing.worker import start_worker
    from django.utils import timezone
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    from apps.core.choices import OrgKind
    from apps.deployments.choices import InstanceStatus
    from apps.deployments.models import DeploymentSchedule, Instance
    from apps.deployments.services import schedule_deployment
    from apps.tenants.models import Organization
    from config.celery import app

    app.conf.task_always_eager = False
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}-{os.getpid()}", name="bench schedules")
    figures: dict = {}
    try:
        instances = Instance.objects.bulk_create([Instance(tenant=tenant, name=f"i{i:03d}", status=InstanceStatus.ACTIVE) for i in range(COUNT)])
        start = timezone.now() + timedelta(seconds=15)  # after worker and beat start-up
        ids = []
        for i, inst in enumerate(instances):
            due = start + timedelta(seconds=SPREAD_S * i / COUNT)
            ids.append(schedule_deployment(actor=None, tenant_id=tenant.pk, operation="suspend", instance_id=inst.pk, scheduled_at=due)["schedule_id"])
        with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, queues=["jobs"], loglevel="WARNING", shutdown_timeout=10):
            beat = EmbeddedService(app, max_interval=app.conf.beat_max_loop_interval,
                                   scheduler_cls="django_celery_beat.schedulers:DatabaseScheduler")
            beat.start()
            try:
                deadline = time.monotonic() + SPREAD_S + 60
                while time.monotonic() < deadline:
                    if DeploymentSchedule.objects.filter(pk__in=ids, last_fired_at__isnull=False).count() == COUNT:
                        break
                    time.sleep(0.5)
            finally:
                beat.stop()
        rows = list(DeploymentSchedule.objects.filter(pk__in=ids, last_fired_at__isnull=False).values_list("scheduled_at", "last_fired_at"))
        late = sorted((fired - due).total_seconds() for due, fired in rows)
        if os.environ.get("BENCH_VERBOSE"):
            print(sorted(((fired - due).total_seconds(), due.isoformat()) for due, fired in rows)[-5:], file=sys.stderr)
        pick = lambda q: late[min(len(late) - 1, int(q * len(late)))] if late else float("nan")  # noqa: E731
        figures = {"schedules": COUNT, "fired": len(late), "p50_s": pick(0.5), "p99_s": pick(0.99), "max_s": late[-1] if late else float("nan"),
                   "min_s": late[0] if late else float("nan"), "beat_loop_s": float(app.conf.beat_max_loop_interval)}
    finally:
        tasks = PeriodicTask.objects.filter(deployment_schedule__tenant=tenant)
        clocked = list(tasks.values_list("clocked_id", flat=True))
        DeploymentSchedule.objects.filter(tenant=tenant).delete()
        tasks.delete()
        PeriodicTask.objects.filter(name__in=[f"deployments.schedule:{i}" for i in ids if i]).delete() if "ids" in dir() else None
        ClockedSchedule.objects.filter(pk__in=[c for c in clocked if c]).delete()
        from apps.deployments.models import Operation

        Operation.objects.filter(tenant=tenant).delete()
        Instance.objects.filter(tenant=tenant).delete()
        from apps.core.models import Event

        Event.objects.filter(tenant=tenant).delete()
        tenant.delete()
    line("deployments_schedule_fire", **figures)


if __name__ == "__main__":
    main()
