"""kill -9 of a real worker in the middle of a run over four targets (the real sshd): the steps
the hosts finished stay recorded as they ended (stored when each host reported, not at the next
periodic flush), the step that was running is failed as lost, the ones never started are
skipped, and the reaper ends the run as soon as the dead worker stops answering — well within
two minutes with the default settings, not after the 120 s heartbeat limit plus a beat tick."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.faults.harness import broker_app, portal_env, start_worker, worker_ready

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]
TARGETS = 4


def test_kill9_leaves_each_steps_truth_and_the_reaper_ends_the_run_promptly(world, sshd, private_redis, test_db_url, tmp_path, monkeypatch):
    from django.conf import settings

    from apps.targets.choices import CredentialKind, RunStatus, StepStatus
    from apps.targets.models import JobRun, JobRunStep
    from apps.targets.schedules import SCHEDULES
    from apps.targets.services.runs import job_run_create
    from tests.factories.targets import make_credential, make_job, make_target

    monkeypatch.setattr("apps.targets.services.runs._enqueue", lambda run_id, countdown=None: None)
    tenant = world.tenant("a")
    markers = tmp_path / "started"
    markers.mkdir()
    cred = make_credential(tenant, kind=CredentialKind.SSH_KEY, username=sshd.user, secret=sshd.key)
    targets = [make_target(tenant, name=f"node{i}", port=sshd.port, credential=cred) for i in range(TARGETS)]
    job = make_job(tenant, name="three-steps", concurrency=TARGETS, steps=[
        {"type": "ssh.exec", "name": "quick", "command": "echo quick-done"},
        {"type": "ssh.exec", "name": "long", "command": f"touch {markers}/{{{{ target.name }}}}; sleep 60"},
        {"type": "ssh.exec", "name": "after", "command": "echo after"},
    ])
    # A periodic flush far slower than the steps: only a write when a host reports can have
    # stored the first step before the kill. The reaper's heartbeat limit stays at its default
    # (120 s): the run must end because its worker is gone, not because that limit passed.
    env = portal_env(database_url=test_db_url, redis_url=private_redis.url, TARGETS_FLUSH_SECONDS=30,
                     TARGETS_REAP_GONE_SECONDS=2, CELERY_VISIBILITY_TIMEOUT=3)
    client = broker_app(private_redis.url)
    worker = start_worker(env, tmp_path / "victim.log", queues="jobs", name="victim")
    survivor = None
    try:
        worker_ready(worker)
        run = job_run_create(job, actor=world.user("a", "admin"), targets=targets)
        client.send_task("targets.execute_run", args=[run.pk], queue="jobs")
        wait_for(lambda: len(list(markers.iterdir())) == TARGETS, timeout=30)
        worker.kill9()
        killed_at = time.monotonic()

        # What the dead worker left: the first step of every target, as the hosts reported it.
        quick = list(JobRunStep.objects.filter(run=run, step_name="quick").values_list("status", "stdout"))
        assert quick == [(StepStatus.SUCCEEDED, "quick-done\n")] * TARGETS, quick
        assert JobRun.objects.get(pk=run.pk).worker.startswith("victim@"), "the run names the Celery worker that took it"

        survivor = start_worker(env, tmp_path / "survivor.log", queues="jobs", name="survivor")
        worker_ready(survivor)
        time.sleep(max(0.0, 2.5 - (time.monotonic() - killed_at)))
        client.send_task("targets.reap_runs", queue="jobs")  # what beat sends every TARGETS reap period
        final = wait_for(lambda: (r := JobRun.objects.get(pk=run.pk)).status != RunStatus.RUNNING and r, timeout=30)
        ended_after = time.monotonic() - killed_at
    finally:
        worker.stop()
        if survivor:
            survivor.stop()

    assert final.status == RunStatus.FAILED
    assert "victim@" in final.error and "does not answer" in final.error, final.error
    by_step = {}
    for name, status in JobRunStep.objects.filter(run=run).values_list("step_name", "status"):
        by_step.setdefault(name, []).append(status)
    assert by_step == {"quick": [StepStatus.SUCCEEDED] * TARGETS, "long": [StepStatus.FAILED] * TARGETS,
                       "after": [StepStatus.SKIPPED] * TARGETS}, by_step
    long_error = JobRunStep.objects.filter(run=run, step_name="long").values_list("error", flat=True).first()
    assert "outcome on the host is unknown" in long_error, long_error
    assert final.counts == {StepStatus.SUCCEEDED: TARGETS, StepStatus.FAILED: TARGETS, StepStatus.SKIPPED: TARGETS}, final.counts
    # With the defaults: beat's reaper period plus the time a dead worker's heartbeat may age.
    period = next(s.every_seconds for s in SCHEDULES if s.task == "targets.reap_runs")
    assert period + settings.TARGETS_REAP_GONE_SECONDS <= 120, (period, settings.TARGETS_REAP_GONE_SECONDS)
    print(f"\nFAULT worker_kill9_truth: run ended {final.status} {ended_after:.1f}s after kill -9 (reaper sent at 2.5 s); "
          f"steps kept: {TARGETS} succeeded, {TARGETS} lost, {TARGETS} skipped; worst case with defaults {period}+{settings.TARGETS_REAP_GONE_SECONDS}+1 s")
