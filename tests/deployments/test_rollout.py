"""Operations executed for real on the loopback sshd: rolling batches, health gate (real
endpoints), rollback of the batches already done, maintenance windows, state kept in rows."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Event
from apps.deployments import services
from apps.deployments.choices import BatchStatus, InstanceStatus, OperationKind, OperationStatus, Phase, RunbookAction, Strategy
from apps.deployments.models import Operation
from apps.maintenance.models import MaintenanceWindow
from apps.maintenance.selectors import in_maintenance
from apps.monitoring.models import Endpoint
from apps.targets.services import run_execute
from tests.factories.deployments import make_instance, make_runbook
from tests.factories.targets import make_credential, make_job, make_target

K = OperationKind


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(world, sshd, tmp_path):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    targets = [make_target(tenant, name=f"node{i}", port=sshd.port, credential=cred) for i in range(4)]
    instance = make_instance(tenant, name="shop", version="1.0", targets=targets)
    out = tmp_path / "versions"
    out.mkdir()
    command = (f"echo {{{{ version }}}} > {out}/{{{{ target.name }}}}.version; "
               "if [ {{ target.name }} = node2 ] && [ {{ version }} = 2.0-bad ]; then echo boom >&2; exit 3; fi")
    job = make_job(tenant, name="upgrade-shop", steps=[{"name": "install", "type": "ssh.exec", "command": command}],
                   parameters_schema={"type": "object", "properties": {"version": {"type": "string"}, "rollback": {"type": "boolean"}}})
    make_runbook(tenant, action=RunbookAction.UPGRADE, job=job, strategy=Strategy.ROLLING, batch_percent=25)
    return type("Env", (), {"tenant": tenant, "instance": instance, "out": out, "targets": targets, "job": job})


def versions(out) -> dict:
    return {p.stem: p.read_text().strip() for p in sorted(out.glob("*.version"))}


def upgrade(world, env, to_version, *, rollback=False, **kwargs):
    return services.operation_request(actor=world.user("a", "operator"), instance=env.instance, operation=K.UPGRADE,
                                      parameters={"to_version": to_version, "rollback_on_failure": rollback}, **kwargs)


def test_rolling_upgrade_runs_in_batches_and_opens_a_window(world, env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0")
    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED, (op.error, op.log)
    batches = list(op.batches.order_by("index"))
    assert [b.target_names for b in batches] == [["node0"], ["node1"], ["node2"], ["node3"]]
    assert all(b.status == BatchStatus.SUCCEEDED and b.gate_passed for b in batches)
    assert len({b.job_run_id for b in batches}) == 4
    assert versions(env.out) == {"node0": "2.0", "node1": "2.0", "node2": "2.0", "node3": "2.0"}
    env.instance.refresh_from_db()
    assert (env.instance.status, env.instance.version, env.instance.previous_version) == (InstanceStatus.ACTIVE, "2.0", "1.0")
    window = MaintenanceWindow.objects.get(pk=op.window_id)
    assert window.ends_at <= timezone.now() and not in_maintenance(tenant_id=env.tenant.pk, obj=env.instance)
    names = set(Event.objects.filter(payload__object_type="deployments.operation").values_list("name", flat=True))
    assert {"deployment.operation_started", "deployment.operation_succeeded"} <= names


def test_failing_batch_rolls_back_the_batches_already_done(world, env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0-bad", rollback=True)
    op.refresh_from_db()
    assert op.status == OperationStatus.ROLLED_BACK, (op.error, op.log)
    forward = list(op.batches.filter(phase=Phase.FORWARD).order_by("index"))
    assert [b.status for b in forward] == [BatchStatus.SUCCEEDED, BatchStatus.SUCCEEDED, BatchStatus.FAILED, BatchStatus.PENDING]
    assert forward[2].gate_passed is False and "node2" in forward[2].gate_detail
    rollback = op.batches.get(phase=Phase.ROLLBACK)
    assert rollback.status == BatchStatus.SUCCEEDED and rollback.target_names == ["node0", "node1", "node2"]
    # node3 was never touched; the others are back on 1.0.
    assert versions(env.out) == {"node0": "1.0", "node1": "1.0", "node2": "1.0"}
    env.instance.refresh_from_db()
    assert (env.instance.status, env.instance.version) == (InstanceStatus.ACTIVE, "1.0")
    assert Event.objects.filter(name="deployment.operation_rolled_back", payload__id=op.pk).exists()


def test_failing_batch_without_rollback_fails_the_operation(world, env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0-bad", rollback=False)
    op.refresh_from_db()
    assert op.status == OperationStatus.FAILED and "Batch 3 failed" in op.error
    assert not op.batches.filter(phase=Phase.ROLLBACK).exists()
    env.instance.refresh_from_db()
    assert env.instance.status == InstanceStatus.FAILED


def test_health_gate_stops_the_rollout_when_an_endpoint_is_down(world, env, http_server, django_capture_on_commit_callbacks):
    Endpoint.objects.create(tenant=env.tenant, name="shop http", kind="http", host="127.0.0.1", port=int(http_server.url.rsplit(":", 1)[1]),
                            path="/", linked_type="deployments.instance", linked_id=env.instance.pk)
    Endpoint.objects.create(tenant=env.tenant, name="shop db", kind="tcp", host="127.0.0.1", port=closed_port(), timeout_seconds=1,
                            linked_type="deployments.instance", linked_id=env.instance.pk)
    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0", rollback=True)
    op.refresh_from_db()
    first = op.batches.get(phase=Phase.FORWARD, index=0)
    assert first.gate_passed is False and "shop db" in first.gate_detail and "shop http" not in first.gate_detail
    assert op.batches.filter(phase=Phase.FORWARD, status=BatchStatus.PENDING).count() == 3
    assert op.status == OperationStatus.ROLLED_BACK
    assert versions(env.out) == {"node0": "1.0"}


def test_health_gate_passes_with_endpoints_up(world, env, http_server, django_capture_on_commit_callbacks):
    Endpoint.objects.create(tenant=env.tenant, name="shop http", kind="http", host="127.0.0.1", port=int(http_server.url.rsplit(":", 1)[1]),
                            path="/", linked_type="deployments.instance", linked_id=env.instance.pk)
    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0")
    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED
    assert all("1 endpoint(s) up" in b.gate_detail for b in op.batches.all())


def test_operation_waits_for_a_maintenance_window(world, env, django_capture_on_commit_callbacks):
    from apps.maintenance.services import window_create

    with django_capture_on_commit_callbacks(execute=True):
        op = upgrade(world, env, "2.0", require_window=True)
    op.refresh_from_db()
    assert op.status == OperationStatus.SCHEDULED and op.waiting_since is not None and not op.batches.exists()
    assert services.operations_sweep(now=timezone.now() + timedelta(seconds=10))["started"] == 0
    op.refresh_from_db()
    assert op.status == OperationStatus.SCHEDULED
    now = timezone.now()
    window_create(actor=None, tenant_id=env.tenant.pk, name="Sunday", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1),
                  objects=[env.instance], scope="objects")
    with django_capture_on_commit_callbacks(execute=True):
        services.operations_sweep(now=timezone.now() + timedelta(seconds=10))
    op.refresh_from_db()
    assert op.status == OperationStatus.SUCCEEDED, op.log
    assert any("maintenance window is open" in e["message"] for e in op.log)


def test_state_survives_a_lost_event_or_worker_restart(world, env, django_capture_on_commit_callbacks):
    """Nothing runs on commit (as if the worker died after the first job run): the sweeper picks
    the operation up from its rows and finishes it."""
    with django_capture_on_commit_callbacks(execute=False):
        op = upgrade(world, env, "2.0")
        services.operation_start(operation_id=op.pk)
        first = op.batches.get(index=0)
        run_execute(run_id=first.job_run_id)
    first.refresh_from_db()
    assert first.status == BatchStatus.RUNNING and first.job_run.status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        result = services.operations_sweep()
    assert result["advanced"] == 1
    op = Operation.objects.get(pk=op.pk)
    assert op.status == OperationStatus.SUCCEEDED, op.log
    assert op.batches.filter(status=BatchStatus.SUCCEEDED).count() == 4


def test_cancel_a_running_operation_stops_later_batches(world, env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        op = upgrade(world, env, "2.0")
        services.operation_start(operation_id=op.pk)
        first = op.batches.get(index=0)
        run_execute(run_id=first.job_run_id)
    with django_capture_on_commit_callbacks(execute=True):
        services.operation_cancel(op, actor=world.user("a", "operator"))
    op.refresh_from_db()
    assert op.status == OperationStatus.CANCELLED
    assert op.batches.exclude(job_run__isnull=True).count() == 1
    env.instance.refresh_from_db()
    assert env.instance.status == InstanceStatus.FAILED
