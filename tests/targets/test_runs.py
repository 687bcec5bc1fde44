"""Runs on the real loopback sshd and HTTP server: output, templating safety, copy, timeouts,
cancel, retry, check mode, caps, events."""

from __future__ import annotations

import os
import threading

import pytest

from apps.core.models import Event
from apps.targets import services
from apps.targets.choices import CredentialKind, RunStatus, StepStatus
from apps.targets.models import JobRun, JobRunOutput
from tests.conftest import wait_for
from tests.factories.targets import make_credential, make_job, make_target

HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "'; touch {marker}; echo '",
    '"; touch {marker}; echo "',
    "a\ntouch {marker}",
    "x && touch {marker} || touch {marker}",
    "$HOME ${{IFS}} * ? ~ | > < &",
]


@pytest.fixture
def fleet(world, sshd):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    targets = [make_target(tenant, name=f"node{i}", port=sshd.port, credential=cred) for i in range(3)]
    return tenant, cred, targets


def run_now(job, actor, **kwargs):
    run = services.job_run_create(job, actor=actor, **kwargs)
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_ssh_exec_runs_on_every_target_and_stores_output(fleet, world):
    tenant, _, targets = fleet
    job = make_job(tenant, steps=[{"name": "who", "type": "ssh.exec", "command": "echo hello-{{ target.name }}; echo oops >&2; hostname"}])
    run = run_now(job, world.user("a", "operator"), targets=targets)
    assert run.status == RunStatus.SUCCEEDED, run.error
    steps = list(run.steps.order_by("target_name"))
    assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * 3
    assert steps[0].stdout.startswith("hello-'node0'\n") or steps[0].stdout.startswith("hello-node0\n")
    assert "oops" in steps[0].stderr and steps[0].exit_code == 0
    assert JobRunOutput.objects.filter(run=run).exists()
    names = list(Event.objects.filter(name__startswith="job_run.").values_list("name", flat=True))
    assert "job_run.started" in names and "job_run.succeeded" in names


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_parameter_cannot_inject_on_real_sshd(fleet, world, tmp_path, template):
    tenant, _, targets = fleet
    marker = tmp_path / "pwned"
    value = template.format(marker=marker)
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"msg": {"type": "string"}}, "required": ["msg"]},
                   steps=[{"type": "ssh.exec", "command": "printf '%s' {{ msg }}"}])
    run = run_now(job, world.user("a", "operator"), params={"msg": value}, targets=targets[:1])
    step = run.steps.get()
    assert run.status == RunStatus.SUCCEEDED, (run.error, step.error, step.stderr)
    assert step.stdout == value  # arrived as one literal argument
    assert not marker.exists()


def test_failed_step_stops_target_and_publishes_failure_with_first_error(fleet, world):
    tenant, _, targets = fleet
    job = make_job(tenant, steps=[
        {"name": "break", "type": "ssh.exec", "command": "echo broken-disk >&2; exit 3"},
        {"name": "after", "type": "ssh.exec", "command": "echo never"},
    ])
    run = run_now(job, world.user("a", "admin"), targets=targets[:2])
    assert run.status == RunStatus.FAILED
    assert run.failed_target_count == 2
    by_name = {(s.target_name, s.step_name): s for s in run.steps.all()}
    assert by_name[("node0", "break")].exit_code == 3
    assert by_name[("node0", "after")].status == StepStatus.SKIPPED
    event = Event.objects.get(name="job_run.failed")
    assert event.payload["failed_targets"] == ["node0", "node1"]
    assert "broken-disk" in event.payload["first_error_lines"]
    assert event.payload["notify"]["type"] == "job_run_failed"
    assert world.user("a", "admin").pk in event.payload["notify"]["user_ids"]


def test_ssh_copy_writes_file_atomically_with_mode_and_leaves_no_temp(fleet, world, tmp_path):
    tenant, _, targets = fleet
    dest = tmp_path / "copied.conf"
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"v": {"type": "string"}}},
                   steps=[{"type": "ssh.copy", "content": "value={{ v }}\n", "path": str(dest), "mode": "0640"},
                          {"type": "ssh.exec", "command": f"cat {dest}"}])
    run = run_now(job, world.user("a", "operator"), params={"v": "42 $(x)"}, targets=targets[:1])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert dest.read_text() == "value=42 $(x)\n"
    assert oct(os.stat(dest).st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir() if "opsportal" in p.name] == []


def test_step_timeout_is_enforced(fleet, world):
    tenant, _, targets = fleet
    job = make_job(tenant, steps=[{"type": "ssh.exec", "command": "sleep 30", "timeout": 1}])
    run = run_now(job, world.user("a", "operator"), targets=targets[:1])
    step = run.steps.get()
    assert step.status == StepStatus.TIMED_OUT and "timed out after 1 s" in step.error
    assert run.status == RunStatus.FAILED


def test_run_timeout_marks_run_timed_out(fleet, world):
    tenant, _, targets = fleet
    job = make_job(tenant, steps=[{"type": "ssh.exec", "command": "sleep 30"}], run_timeout_seconds=1)
    run = run_now(job, world.user("a", "operator"), targets=targets[:1])
    assert run.status == RunStatus.TIMED_OUT
    assert run.steps.get().status == StepStatus.TIMED_OUT


def test_output_is_capped_with_marker(fleet, world, settings):
    settings.TARGETS_OUTPUT_CAP_BYTES = 1000
    tenant, _, targets = fleet
    job = make_job(tenant, steps=[{"type": "ssh.exec", "command": "head -c 200000 /dev/zero | tr '\\0' a"}])
    run = run_now(job, world.user("a", "operator"), targets=targets[:1])
    step = run.steps.get()
    assert step.stdout.startswith("a" * 1000) and "output truncated" in step.stdout
    assert len(step.stdout) < 1200
    stored = "".join(JobRunOutput.objects.filter(step=step).values_list("data", flat=True))
    assert stored == step.stdout


def test_unreachable_target_fails_and_retry_runs_only_failed_targets(fleet, world):
    tenant, cred, targets = fleet
    dead = make_target(tenant, name="dead", port=1, credential=cred)
    job = make_job(tenant, steps=[{"type": "ssh.exec", "command": "true"}])
    run = run_now(job, world.user("a", "operator"), targets=[targets[0], dead])
    assert run.status == RunStatus.FAILED
    assert "cannot connect" in run.steps.get(target_name="dead").error
    retry = services.run_retry_failed(run, actor=world.user("a", "operator"))
    assert retry.retry_of == run and list(retry.steps.values_list("target_name", flat=True)) == ["dead"]


def test_check_mode_renders_without_executing(fleet, world, tmp_path):
    tenant, _, targets = fleet
    marker = tmp_path / "made"
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"p": {"type": "string"}}},
                   steps=[{"type": "ssh.exec", "command": f"touch {marker} {{{{ p }}}}"}])
    run = run_now(job, world.user("a", "operator"), params={"p": "it's"}, targets=targets[:1], check_mode=True)
    step = run.steps.get()
    assert run.status == RunStatus.SUCCEEDED and step.status == StepStatus.CHECKED
    assert step.rendered == f"export OPS_1='it'\"'\"'s'\ntouch {marker} \"${{OPS_1}}\""
    assert not marker.exists()


def test_http_request_step_against_loopback_server(fleet, world, http_server):
    tenant, _, targets = fleet
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"q": {"type": "string"}}}, steps=[
        {"type": "http.request", "method": "POST", "url": http_server.url + "/hook/{{ q }}", "body": "hi {{ q }}",
         "headers": {"X-Who": "{{ target.name }}"}, "expected_status": 200},
        {"type": "http.request", "url": http_server.url + "/status/503", "expected_status": [200, 204]},
    ])
    run = run_now(job, world.user("a", "operator"), params={"q": "a/b c"}, targets=targets[:1])
    first, second = run.steps.order_by("step_index")
    assert first.status == StepStatus.SUCCEEDED and first.exit_code == 200
    hit = [r for r in http_server.seen if r["path"].startswith("/hook/")][-1]
    assert hit["path"] == "/hook/a%2Fb%20c" and hit["body"] == "hi a/b c" and hit["headers"]["X-Who"] == "node0"
    assert second.status == StepStatus.FAILED and second.exit_code == 503


@pytest.mark.django_db(transaction=True)
def test_cancel_interrupts_a_running_run(sshd, monkeypatch):
    from tests.world import build_world

    monkeypatch.setattr("apps.targets.services.runs._enqueue", lambda *a, **k: None)  # run it on our own thread

    world = build_world()
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    target = make_target(tenant, name="n", port=sshd.port, credential=cred)
    job = make_job(tenant, steps=[{"type": "ssh.exec", "command": "sleep 20"}, {"type": "ssh.exec", "command": "echo no"}])
    run = services.job_run_create(job, actor=world.user("a", "operator"), targets=[target])
    def work():
        from django.db import connection

        try:
            services.run_execute(run_id=run.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: JobRun.objects.get(pk=run.pk).counts.get("running"), timeout=15)
    services.run_cancel(JobRun.objects.get(pk=run.pk), actor=world.user("a", "operator"))
    worker.join(15)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert sorted(run.steps.values_list("status", flat=True)) == [StepStatus.CANCELLED, StepStatus.CANCELLED]


def test_key_with_passphrase_authenticates(world, sshd):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key_with_passphrase, passphrase="s3cret-pass", kind=CredentialKind.SSH_KEY)
    target = make_target(tenant, name="pp", port=sshd.port, credential=cred)
    tested = services.target_test_connection(target, actor=world.user("a", "operator"))
    assert tested.last_test_result == "ok", tested.last_test_message
    assert "opsportal-ok" in tested.last_test_message
