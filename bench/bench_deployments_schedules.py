"""Schedule fire lateness with a real `celery beat` process (DatabaseScheduler) and one real Celery
worker process (prefork -c 2, queue jobs, as in the Procfile) on Redis and PostgreSQL.

1. co_due: 1,000 schedules (500 deployment schedules, 500 job schedules) all due in the same
   second, fired by the due-schedule dispatcher (`core.dispatch_due` every 1 s, claims in bulk,
   sends fires with eta = due time).
2. peer, same run, same beat + worker, same fire work: stock django-celery-beat's way — one
   PeriodicTask per schedule (one-off, one ClockedSchedule at the same second) whose task is the
   same fire handler (`core.fire_due` for one schedule); beat sends them one by one.
3. one_time: 100 one-time deployment schedules due over 40 s (through `schedule_deployment`).

Lateness = `last_fired_at` (stamped when the worker's fire handler takes the schedule) − due time.
The fired operations/runs are refused on purpose (instances still provisioning, a job without
targets): only the scheduling path is measured, the refusal is recorded on each schedule.

Prints one line: deployments_schedule_fire: co_due=1000 p50_s=… p99_s=… peer_p99_s=… ratio_p99=… one_time_p99_s=…
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ.setdefault("CELERY_BROKER_URL", os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
from common import BENCH_DB, ROOT, line, setup_django

PREFIX = "bench-sched"
CO_DUE = 1000
ONE_TIME = 100
SPREAD_S = 40
LEAD_S = 20  # beat and worker are up; rows are written before this


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING",
           "DB_CONN_MAX_AGE": "60"}
    with open(log, "ab") as out:
        return subprocess.Popen([str(ROOT / ".venv/bin/celery"), "-A", "config", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _co_due_rows(tenant, job, due, *, tag: str, dispatched: bool) -> tuple[list, list]:
    """500 deployment + 500 job schedules due at `due` (cron "0 3 * * *": the next fire is a day
    later); `dispatched` False leaves next_fire_at empty so only the peer's PeriodicTasks fire them."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    from apps.deployments.models import DeploymentSchedule, Instance
    from apps.targets.models import JobSchedule

    half = CO_DUE // 2
    cron, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC")
    instances = Instance.objects.bulk_create([Instance(tenant=tenant, name=f"{tag}-{i:04d}") for i in range(half)])
    tasks = PeriodicTask.objects.bulk_create([PeriodicTask(name=f"{PREFIX}-{tag}-{i}", task="deployments.fire_schedule", crontab=cron,
                                                           enabled=False) for i in range(half)])
    deps = DeploymentSchedule.objects.bulk_create([
        DeploymentSchedule(tenant=tenant, instance=inst, operation="suspend", scheduled_at=due - timedelta(days=1), periodic_task=task,
                           next_fire_at=due if dispatched else None) for inst, task in zip(instances, tasks, strict=True)])
    jobs = JobSchedule.objects.bulk_create([JobSchedule(tenant=tenant, job=job, name=f"{tag}-{i}", cron="0 3 * * *",
                                                        next_fire_at=due if dispatched else None) for i in range(half)])
    return [d.pk for d in deps], [j.pk for j in jobs]


def _peer_tasks(dep_ids, job_ids, due) -> None:
    """Stock beat: one one-off PeriodicTask per schedule, all on one ClockedSchedule, each calling
    the same fire handler for its one schedule."""
    import json

    from django_celery_beat.models import ClockedSchedule, PeriodicTask, PeriodicTasks

    clocked = ClockedSchedule.objects.create(clocked_time=due)
    rows = [("deployments.schedule", str(pk)) for pk in dep_ids] + [("targets.schedule", str(pk)) for pk in job_ids]
    PeriodicTask.objects.bulk_create([
        PeriodicTask(name=f"{PREFIX}-beat-{i}", task="core.fire_due", clocked=clocked, one_off=True, queue="jobs",
                     args=json.dumps([name, [pk], due.isoformat()])) for i, (name, pk) in enumerate(rows)])
    PeriodicTasks.update_changed()


def _wait_fired(dep_ids, job_ids, timeout: float) -> list[float]:
    from apps.deployments.models import DeploymentSchedule
    from apps.targets.models import JobSchedule

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = (DeploymentSchedule.objects.filter(pk__in=dep_ids, last_fired_at__isnull=False).count()
                + JobSchedule.objects.filter(pk__in=job_ids, last_fired_at__isnull=False).count())
        if done == len(dep_ids) + len(job_ids):
            break
        time.sleep(0.5)
    rows = [*DeploymentSchedule.objects.filter(pk__in=dep_ids, last_fired_at__isnull=False).values_list("scheduled_at", "last_fired_at", "fire_count"),
            *JobSchedule.objects.filter(pk__in=job_ids, last_fired_at__isnull=False).values_list("next_fire_at", "last_fired_at", "pk")]
    return rows


def _lateness(rows, due) -> list[float]:
    return sorted((fired - due).total_seconds() for _, fired, _ in rows)


def _effects(tenant, job_ids, due, *, timeout: float) -> list[float]:
    """When each job schedule's fire had its effect: the `job_schedule.skipped` event of its
    refused run (the job has no targets), minus the due time."""
    from apps.core.models import Event

    wanted = {int(pk) for pk in job_ids}
    deadline = time.monotonic() + timeout
    while True:
        rows = {e["payload"]["id"]: e["created_at"] for e in Event.objects.filter(tenant=tenant, name="job_schedule.skipped",
                                                                                   created_at__gte=due).values("payload", "created_at")}
        if wanted <= set(rows) or time.monotonic() > deadline:
            return sorted((rows[pk] - due).total_seconds() for pk in wanted if pk in rows)
        time.sleep(1)


def _wait_dispatching(tenant, job) -> None:
    """Until beat runs the dispatcher and the worker fires: a probe schedule due now is fired."""
    from django.utils import timezone

    from apps.targets.models import JobSchedule

    probe = JobSchedule.objects.create(tenant=tenant, job=job, name="probe", cron="0 3 * * *", next_fire_at=timezone.now())
    deadline = time.monotonic() + 120
    while not JobSchedule.objects.filter(pk=probe.pk, last_fired_at__isnull=False).exists() and time.monotonic() < deadline:
        time.sleep(0.5)


def _pick(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _one_time(tenant) -> list:
    from django.utils import timezone

    from apps.deployments.choices import InstanceStatus
    from apps.deployments.models import Instance
    from apps.deployments.services import schedule_deployment

    instances = Instance.objects.bulk_create([Instance(tenant=tenant, name=f"once-{i:03d}", status=InstanceStatus.ACTIVE) for i in range(ONE_TIME)])
    start = timezone.now() + timedelta(seconds=LEAD_S)  # after all 100 are written
    ids = [schedule_deployment(actor=None, tenant_id=tenant.pk, operation="suspend", instance_id=inst.pk,
                               scheduled_at=start + timedelta(seconds=SPREAD_S * i / ONE_TIME))["schedule_id"] for i, inst in enumerate(instances)]
    return ids


def main() -> None:
    setup_django()
    import io
    import tempfile

    from django.core.management import call_command
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from apps.core.choices import OrgKind
    from apps.deployments.models import DeploymentSchedule
    from apps.tenants.models import Organization
    from tests.factories.targets import make_job

    logs = Path(tempfile.mkdtemp(prefix="bench-sched-"))
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}-{os.getpid()}", name="bench schedules")
    job = make_job(tenant, name=f"{PREFIX}-job")
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    dispatcher = PeriodicTask.objects.get(task="core.dispatch_due")
    figures: dict = {}
    worker = beat = None
    try:
        worker = _start(["worker", "-P", "prefork", "-c", "2", "-Q", "jobs", "--loglevel=WARNING", "-n", f"bench-sched-{os.getpid()}@%h",
                         "--without-gossip", "--without-mingle"], logs / "worker.log")
        # -- peer: stock beat, one PeriodicTask per schedule (dispatcher paused) --------------------
        PeriodicTask.objects.filter(pk=dispatcher.pk).update(enabled=False)
        PeriodicTasks.update_changed()
        due = (timezone.now() + timedelta(seconds=LEAD_S)).replace(microsecond=0)
        peer_dep, peer_job = _co_due_rows(tenant, job, due, tag="peer", dispatched=False)
        _peer_tasks(peer_dep, peer_job, due)
        beat = _start(["beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--loglevel=WARNING", "--pidfile="], logs / "beat-peer.log")
        peer = _lateness(_wait_fired(peer_dep, peer_job, LEAD_S + 120), due)
        _stop(beat)
        PeriodicTask.objects.filter(name__startswith=f"{PREFIX}-beat-").update(enabled=False)
        # -- ours: the dispatcher claims all 1,000 in bulk ------------------------------------------
        PeriodicTask.objects.filter(pk=dispatcher.pk).update(enabled=True)
        PeriodicTasks.update_changed()
        beat = _start(["beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--loglevel=WARNING", "--pidfile="], logs / "beat.log")
        _wait_dispatching(tenant, job)
        due = (timezone.now() + timedelta(seconds=LEAD_S)).replace(microsecond=0)
        dep_ids, job_ids = _co_due_rows(tenant, job, due, tag="ours", dispatched=True)
        ours = _lateness(_wait_fired(dep_ids, job_ids, LEAD_S + 60), due)
        effect = _effects(tenant, job_ids, due, timeout=300)  # the runs' refusals recorded: the worker is free again
        # -- 100 one-time schedules over 40 s -------------------------------------------------------
        once_ids = _one_time(tenant)
        _wait_fired(once_ids, [], SPREAD_S + 60)
        once = sorted((fired - at).total_seconds() for at, fired in DeploymentSchedule.objects.filter(
            pk__in=once_ids, last_fired_at__isnull=False).values_list("scheduled_at", "last_fired_at"))
        fired_twice = DeploymentSchedule.objects.filter(tenant=tenant, fire_count__gt=1).count()
        figures = {
            "co_due": CO_DUE, "fired": len(ours), "p50_s": _pick(ours, 0.5), "p99_s": _pick(ours, 0.99), "max_s": ours[-1] if ours else float("nan"),
            "effect_p50_s": _pick(effect, 0.5), "effect_p99_s": _pick(effect, 0.99), "peer_fired": len(peer), "peer_p50_s": _pick(peer, 0.5), "peer_p99_s": _pick(peer, 0.99),
            "ratio_p99": (_pick(peer, 0.99) / _pick(ours, 0.99)) if ours and peer and _pick(ours, 0.99) > 0 else float("nan"),
            "one_time": ONE_TIME, "one_time_fired": len(once), "one_time_p50_s": _pick(once, 0.5), "one_time_p99_s": _pick(once, 0.99),
            "fired_twice": fired_twice, "worker": "prefork-c2",
        }
    finally:
        _stop(beat)
        _stop(worker)
        _cleanup(tenant)
    line("deployments_schedule_fire", **figures)


def _cleanup(tenant) -> None:
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    from apps.core.models import Event
    from apps.deployments.models import Instance, Operation
    from apps.targets.models import Job, JobSchedule

    tasks = PeriodicTask.objects.filter(deployment_schedule__tenant=tenant) | PeriodicTask.objects.filter(name__startswith=PREFIX)
    clocked = [c for c in tasks.values_list("clocked_id", flat=True) if c]
    tasks.delete()  # and, by cascade, the deployment schedules
    ClockedSchedule.objects.filter(pk__in=clocked).delete()
    JobSchedule.objects.filter(tenant=tenant).delete()
    Operation.objects.filter(tenant=tenant).delete()
    Instance.objects.filter(tenant=tenant).delete()
    Job.objects.filter(tenant=tenant).update(current_version=None)
    Job.objects.filter(tenant=tenant).delete()
    Event.objects.filter(tenant=tenant).delete()
    tenant.delete()


if __name__ == "__main__":
    main()
