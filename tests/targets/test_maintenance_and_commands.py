"""Retention purges registered with apps.maintenance (output chunks, whole runs) and the
`run_job` / `reap_runs` / purge commands, against the real loopback sshd where a run executes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.maintenance.choices import RunStatus as MRunStatus
from apps.maintenance.services import maintenance_run
from apps.targets import services
from apps.targets.choices import RunStatus, StepStatus, Trigger
from apps.targets.models import FailedTask, JobRun, JobRunOutput, JobRunStep
from tests.factories.targets import make_credential, make_job, make_target


def _run(job, target, *, status=RunStatus.SUCCEEDED, finished_days_ago=None, chunks=2):
    run = services.job_run_create(job, actor=None, targets=[target], trigger=Trigger.API)
    now = timezone.now()
    finished = now - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    JobRun.objects.filter(pk=run.pk).update(status=status, started_at=finished or now, finished_at=finished)
    step = run.steps.get()
    JobRunStep.objects.filter(pk=step.pk).update(status=StepStatus.SUCCEEDED, stdout="x" * 10)
    JobRunOutput.objects.bulk_create([JobRunOutput(run=run, step=step, data=f"line {i}\n") for i in range(chunks)])
    return run


@pytest.fixture
def job_and_target(world, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    target = make_target(tenant, name="node", credential=make_credential(tenant))
    return make_job(tenant, name="nightly"), target


def test_purge_job_output_keeps_steps_and_recent_runs(job_and_target, settings):
    job, target = job_and_target
    settings.TARGETS_OUTPUT_RETENTION_DAYS = 30
    old = _run(job, target, finished_days_ago=40, chunks=3)
    recent = _run(job, target, finished_days_ago=5)
    running = _run(job, target, status=RunStatus.RUNNING)  # never finished: untouched however old
    JobRun.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(days=90))

    dry = maintenance_run(task="purge_job_output", dry_run=True)
    assert dry.status == MRunStatus.SUCCEEDED and dry.rows_removed == {"targets_jobrunoutput": 3}
    assert JobRunOutput.objects.filter(run=old).count() == 3

    run = maintenance_run(task="purge_job_output", batch_size=2)
    assert run.rows_removed == {"targets_jobrunoutput": 3}, run.error
    assert not JobRunOutput.objects.filter(run=old).exists()
    assert old.steps.get().stdout == "x" * 10  # the capped summary stays
    assert JobRunOutput.objects.filter(run__in=[recent, running]).count() == 4


def test_purge_job_runs_deletes_old_runs_with_children_and_dead_letters(job_and_target, settings):
    job, target = job_and_target
    settings.TARGETS_RUN_RETENTION_DAYS = 180
    old = _run(job, target, finished_days_ago=200, status=RunStatus.FAILED)
    retry = _run(job, target, finished_days_ago=1)
    JobRun.objects.filter(pk=retry.pk).update(retry_of=old)  # SET_NULL: does not keep the old run
    keep = _run(job, target, finished_days_ago=100)
    FailedTask.objects.create(task_name="targets.execute_run", created_at=timezone.now() - timedelta(days=200))
    FailedTask.objects.create(task_name="targets.execute_run")

    run = maintenance_run(task="purge_job_runs")
    assert run.status == MRunStatus.SUCCEEDED, run.error
    assert run.rows_removed == {"targets_jobrunoutput": 2, "targets_jobrunstep": 1, "targets_jobrun": 1, "targets_failedtask": 1}
    assert set(JobRun.objects.values_list("pk", flat=True)) == {retry.pk, keep.pk}
    assert FailedTask.objects.count() == 1
    retry.refresh_from_db()
    assert retry.retry_of_id is None


def test_zero_retention_keeps_everything(job_and_target, settings):
    job, target = job_and_target
    settings.TARGETS_RUN_RETENTION_DAYS = 0
    _run(job, target, finished_days_ago=5000)
    run = maintenance_run(task="purge_job_runs")
    assert run.status == MRunStatus.SUCCEEDED and run.total_rows == 0 and "kept" in run.details["message"]
    assert JobRun.objects.count() == 1


def test_purge_commands_and_param_override(job_and_target, capsys):
    job, target = job_and_target
    _run(job, target, finished_days_ago=10, chunks=4)
    call_command("purge_job_output", "--dry-run", "--param", "days=7")
    assert "would remove 4 rows" in capsys.readouterr().out
    call_command("purge_job_runs", "--param", "days=7")
    assert "removed 6 rows" in capsys.readouterr().out and not JobRun.objects.exists()


def test_registered_with_beat_schedules():
    from apps.core.periodic import collect

    names = {s.name for s in collect()}
    assert {"maintenance: purge_job_output", "maintenance: purge_job_runs"} <= names


# -- run_job / reap_runs -------------------------------------------------------------------------
def test_run_job_command_runs_on_real_sshd_and_waits(world, sshd, capsys):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    make_target(tenant, name="web-1", port=sshd.port, credential=cred)
    job = make_job(tenant, name="greet", parameters_schema={"type": "object", "properties": {"who": {"type": "string"}}},
                   steps=[{"type": "ssh.exec", "command": "echo hello {{ who }}"}])
    call_command("run_job", "greet", "--tenant", tenant.slug, "--target", "web-1", "--param", "who=ops team", "--inline")
    out = capsys.readouterr().out
    run = JobRun.objects.get(job=job)
    assert run.status == RunStatus.SUCCEEDED and run.trigger == Trigger.COMMAND and run.params == {"who": "ops team"}
    assert f"run #{run.pk}: succeeded" in out
    assert run.steps.get().stdout == "hello ops team\n"


def test_run_job_command_refuses_bad_input(world):
    tenant = world.tenant("a")
    job = make_job(tenant, name="strict", parameters_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    make_target(tenant, name="t1", credential=make_credential(tenant))
    with pytest.raises(CommandError, match="No job"):
        call_command("run_job", "nope", "--tenant", tenant.slug)
    with pytest.raises(CommandError, match="Not in tenant"):
        call_command("run_job", str(job.pk), "--target", "elsewhere")
    with pytest.raises(CommandError, match="n"):
        call_command("run_job", str(job.pk), "--target", "t1", "--param", "n=notanumber")
    with pytest.raises(CommandError, match="not allow"):
        call_command("run_job", str(job.pk), "--target", "t1", "--param", "n=1", "--as", world.user("b", "admin").username)
    assert not JobRun.objects.exists()


def test_reap_runs_command_fails_a_run_whose_worker_died(job_and_target, capsys, settings):
    job, target = job_and_target
    run = _run(job, target, status=RunStatus.RUNNING)
    JobRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.TARGETS_REAP_AFTER_SECONDS + 60))
    call_command("reap_runs")
    assert "1 run(s) failed" in capsys.readouterr().out
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "stopped sending heartbeats" in run.error
