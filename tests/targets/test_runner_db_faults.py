"""The runner and its database connection, on the real loopback sshd: PostgreSQL terminates the
runner's own backend in the middle of a run (`pg_terminate_backend`, as a failover or an idle
killer does). The runner reconnects and records what every step really did; when it cannot, the
run fails with a short reason for users and the traceback goes to the log only."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import DatabaseError, connection, connections

from apps.targets import services
from apps.targets.choices import RunStatus, StepStatus
from apps.targets.models import JobRunStep
from tests.conftest import wait_for
from tests.factories.targets import make_credential, make_job, make_target

pytestmark = pytest.mark.django_db(transaction=True)
STEPS = 20


@pytest.fixture
def twenty_steps(sshd, monkeypatch):
    from tests.world import build_world

    monkeypatch.setattr("apps.targets.services.runs._enqueue", lambda *a, **k: None)  # run it on our own thread
    world = build_world()
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    target = make_target(tenant, name="n", port=sshd.port, credential=cred)
    job = make_job(tenant, steps=[{"type": "ssh.exec", "name": f"s{i}", "command": f"sleep 0.15; echo step-{i}"} for i in range(STEPS)])
    run = services.job_run_create(job, actor=world.user("a", "operator"), targets=[target])
    return world, run


def run_and_kill_backend_midway(run, *, after_succeeded: int = 5) -> list[int]:
    """Execute `run` on a thread (as the Celery task does); once `after_succeeded` steps are
    stored, terminate that thread's PostgreSQL backend. Returns the backend pids it used."""
    pids: list[int] = []

    def backend_pid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def work():
        try:
            pids.append(backend_pid())
            services.run_execute(run_id=run.pk)
            pids.append(backend_pid())
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: JobRunStep.objects.filter(run=run, status=StepStatus.SUCCEEDED).count() >= after_succeeded, timeout=30)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        assert cursor.fetchone()[0], "the runner's backend was not terminated"
    worker.join(60)
    assert not worker.is_alive()
    return pids


def test_dropped_connection_mid_run_records_every_step_as_it_really_ended(twenty_steps):
    _, run = twenty_steps
    pids = run_and_kill_backend_midway(run)
    run.refresh_from_db()
    steps = list(JobRunStep.objects.filter(run=run).order_by("step_index"))
    assert [s.status for s in steps] == [StepStatus.SUCCEEDED] * STEPS, [(s.step_index, s.status, s.error) for s in steps]
    assert [s.stdout for s in steps] == [f"step-{i}\n" for i in range(STEPS)]
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts == {StepStatus.SUCCEEDED: STEPS}
    assert len(pids) == 2 and pids[0] != pids[1], "the runner did not reconnect"


def test_runner_that_cannot_record_shows_a_short_reason_and_logs_the_traceback(twenty_steps, settings, api, client, caplog):
    world, run = twenty_steps
    settings.TARGETS_DB_RETRY_SECONDS = 0  # no second chance: the runner fails
    with caplog.at_level(logging.ERROR):
        run_and_kill_backend_midway(run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "database" in run.error.lower(), run.error
    for shown in (run.error, *JobRunStep.objects.filter(run=run).values_list("error", flat=True)):
        assert "Traceback" not in shown and 'File "' not in shown and ".py" not in shown and "\n" not in shown.strip(), shown
    body = api.as_user(world.user("a", "operator")).get(f"/api/v1/runs/{run.pk}/").json()
    assert body["error"] == run.error
    client.force_login(world.user("a", "admin"))
    page = client.get(f"/admin/targets/jobrun/{run.pk}/change/").content.decode()
    assert "Traceback" not in page and "site-packages" not in page
    assert any(r.exc_info and isinstance(r.exc_info[1], DatabaseError) for r in caplog.records), "the traceback did not reach the log"
