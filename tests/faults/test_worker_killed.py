"""kill -9 the worker in the middle of a job run on a real sshd: the run must end (failed by the
reaper), the redelivered task must not run the step again, and no step may be recorded as a
success twice."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for
from tests.faults.harness import broker_app, portal_env, start_worker, worker_ready

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_run_ends_failed_never_stuck_never_twice(world, sshd, private_redis, test_db_url, tmp_path, monkeypatch):
    from apps.targets.choices import CredentialKind, RunStatus, StepStatus
    from apps.targets.models import JobRun, JobRunStep
    from apps.targets.services.runs import job_run_create
    from tests.factories.targets import make_credential, make_job, make_target

    # The run is enqueued below on the private broker, not by the test process' (eager) Celery app.
    monkeypatch.setattr("apps.targets.services.runs._enqueue", lambda run_id, countdown=None: None)
    tenant = world.tenant("a")
    marker = tmp_path / "executions.txt"
    cred = make_credential(tenant, kind=CredentialKind.SSH_KEY, username=sshd.user, secret=sshd.key)
    target = make_target(tenant, name="sshd", port=sshd.port, credential=cred)
    job = make_job(tenant, name="long", steps=[
        {"type": "ssh.exec", "name": "mark-and-wait", "command": f"echo ran >> {marker}; echo started; sleep 30; echo done"},
        {"type": "ssh.exec", "name": "after", "command": "echo after"},
    ])
    # Short visibility timeout: the broker hands the unacked message of the dead worker to the next one.
    env = portal_env(database_url=test_db_url, redis_url=private_redis.url, TARGETS_REAP_AFTER_SECONDS=4,
                     TARGETS_FLUSH_SECONDS=0.3, CELERY_VISIBILITY_TIMEOUT=3)
    client = broker_app(private_redis.url)
    worker = start_worker(env, tmp_path / "worker1.log", queues="jobs", name="victim")
    second = None
    try:
        worker_ready(worker)
        run = job_run_create(job, actor=world.user("a", "admin"), targets=[target])
        client.send_task("targets.execute_run", args=[run.pk], queue="jobs")
        wait_for(lambda: marker.exists() and JobRunStep.objects.filter(run=run, status=StepStatus.RUNNING).exists(), timeout=30)
        worker.kill9()
        killed_at = time.monotonic()
        assert JobRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

        # Past the visibility timeout the broker hands the dead worker's unacked message to the
        # next worker that connects: the task comes back, finds the run taken and does nothing.
        time.sleep(4)
        second = start_worker(env, tmp_path / "worker2.log", queues="jobs", name="survivor")
        worker_ready(second)
        wait_for(lambda: "targets.execute_run" in second.output().split("ready.")[-1] and "succeeded" in second.output(), timeout=20)
        client.send_task("targets.reap_runs", queue="jobs")  # what beat sends every minute
        final = wait_for(lambda: (r := JobRun.objects.get(pk=run.pk)).status != RunStatus.RUNNING and r, timeout=30)
        ended_after = time.monotonic() - killed_at
    finally:
        worker.stop()
        if second:
            second.stop()

    assert final.status == RunStatus.FAILED, (final.status, final.error)
    assert "stopped sending heartbeats" in final.error
    assert marker.read_text().count("ran") == 1, "the step ran again after the kill"
    assert "Task targets.execute_run" in (tmp_path / "worker2.log").read_text(), "the lost message was not redelivered"
    steps = list(JobRunStep.objects.filter(run=run).values_list("target_name", "step_name", "status"))
    assert len(steps) == len(set((t, s) for t, s, _ in steps)), steps
    assert not [s for s in steps if s[2] == StepStatus.SUCCEEDED and s[1] == "mark-and-wait"], steps
    assert not JobRunStep.objects.filter(run=run, status__in=[StepStatus.PENDING, StepStatus.RUNNING]).exists()
    print(f"\nFAULT worker_kill9: run ended {final.status} {ended_after:.1f}s after kill -9; executions=1; steps={len(steps)}")
