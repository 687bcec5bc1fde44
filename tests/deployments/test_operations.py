"""Operation requests: parameters by type, every operation × instance state, busy instances,
runbooks, four-eyes approvals, expiry and cancel (no execution here; see test_rollout)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.models import Event
from apps.deployments import services
from apps.deployments.choices import Environment, InstanceStatus, OperationKind, OperationStatus, RunbookAction
from apps.deployments.models import Operation
from apps.deployments.services.operations import ALLOWED_FROM
from tests.factories.deployments import make_instance, make_runbook, make_runbooks

K = OperationKind
PARAMS = {
    K.PROVISION: {"version": "1.0"},
    K.UPGRADE: {"to_version": "9.9"},
    K.SCALE: {"cpu_cores": 8},
    K.SUSPEND: {},
    K.RESUME: {},
    K.DESTROY: {},
}
CASES = [(op, state) for op in K.values for state in InstanceStatus.values]


@pytest.fixture
def tenant_a(world):
    tenant = world.tenant("a")
    make_runbooks(tenant)
    return tenant


@pytest.mark.parametrize(("operation", "state"), CASES)
def test_every_operation_in_every_instance_state(world, tenant_a, operation, state):
    instance = make_instance(tenant_a, status=state)
    admin = world.user("a", "admin")
    if state in ALLOWED_FROM[operation]:
        op = services.operation_request(actor=admin, instance=instance, operation=operation, parameters=PARAMS[operation])
        expected = OperationStatus.PENDING_APPROVAL if operation == K.DESTROY else OperationStatus.SCHEDULED
        assert op.status == expected
    else:
        with pytest.raises(ValidationError) as exc:
            services.operation_request(actor=admin, instance=instance, operation=operation, parameters=PARAMS[operation])
        assert f"it is {state}" in str(exc.value)
        assert not Operation.objects.exists()


@pytest.mark.parametrize(("operation", "params", "message"), [
    (K.UPGRADE, {}, "needs to_version"),
    (K.UPGRADE, {"to_version": "2", "cpu_cores": 2}, "do(es) not apply to upgrade"),
    (K.UPGRADE, {"to_version": "2", "rollback_on_failure": "yes"}, "true or false"),
    (K.SCALE, {}, "at least one of"),
    (K.SCALE, {"cpu_cores": 0}, "positive whole number"),
    (K.SCALE, {"memory_gb": "lots"}, "positive whole number"),
    (K.SUSPEND, {"to_version": "2"}, "do(es) not apply to suspend"),
    (K.UPGRADE, {"to_version": "1.0"}, "already runs version 1.0"),
    (K.SCALE, {"cpu_cores": 1}, "nothing to scale"),
])
def test_parameters_that_do_not_fit_are_refused(world, tenant_a, operation, params, message):
    instance = make_instance(tenant_a, cpu_cores=1)
    with pytest.raises(ValidationError) as exc:
        services.operation_request(actor=world.user("a", "admin"), instance=instance, operation=operation, parameters=params)
    assert message in str(exc.value)


def test_second_operation_on_busy_instance_is_refused(world, tenant_a):
    instance = make_instance(tenant_a)
    services.operation_request(actor=world.user("a", "operator"), instance=instance, operation=K.SUSPEND)
    with pytest.raises(ValidationError, match="already has operation"):
        services.operation_request(actor=world.user("a", "operator"), instance=instance, operation=K.SCALE, parameters={"cpu_cores": 4})


def test_missing_runbook_is_a_clear_error(world):
    instance = make_instance(world.tenant("a"))
    with pytest.raises(ValidationError, match="No runbook maps 'upgrade'"):
        services.operation_request(actor=world.user("a", "admin"), instance=instance, operation=K.UPGRADE, parameters={"to_version": "2"})


def test_instance_runbook_wins_over_tenant_runbook(world, tenant_a):
    instance = make_instance(tenant_a)
    own = make_runbook(tenant_a, action=RunbookAction.UPGRADE, instance=instance)
    op = services.operation_request(actor=world.user("a", "admin"), instance=instance, operation=K.UPGRADE, parameters={"to_version": "2"})
    assert op.runbook == own and op.job == own.job


def test_viewer_cannot_request_operations(world, tenant_a):
    instance = make_instance(tenant_a)
    with pytest.raises(PermissionDenied):
        services.operation_request(actor=world.user("a", "viewer"), instance=instance, operation=K.SUSPEND)


def test_production_upgrade_needs_a_second_admin(world, tenant_a):
    instance = make_instance(tenant_a, environment=Environment.PRODUCTION)
    requester, approver = world.user("a", "admin"), world.user("a", "owner")
    op = services.operation_request(actor=requester, instance=instance, operation=K.UPGRADE, parameters={"to_version": "2"})
    assert op.status == OperationStatus.PENDING_APPROVAL
    assert Event.objects.filter(name="deployment.approval_requested", payload__id=op.pk).exists()
    with pytest.raises(PermissionDenied, match="Four eyes"):
        services.operation_approve(op, actor=requester)
    with pytest.raises(PermissionDenied):
        services.operation_approve(op, actor=world.user("a", "operator"))
    op = services.operation_approve(op, actor=approver)
    assert op.status == OperationStatus.SCHEDULED and op.approved_by == approver


def test_staging_upgrade_needs_no_approval_and_tenant_can_switch_rules(world, tenant_a):
    staging = make_instance(tenant_a, name="stg")
    assert services.operation_request(actor=world.user("a", "admin"), instance=staging, operation=K.UPGRADE,
                                      parameters={"to_version": "2"}).status == OperationStatus.SCHEDULED
    tenant_a.settings = {"deployments": {"approve_destroy": False}}
    tenant_a.save()
    prod = make_instance(tenant_a, name="prod", environment=Environment.PRODUCTION)
    prod.tenant.refresh_from_db()
    assert services.operation_request(actor=world.user("a", "admin"), instance=prod, operation=K.DESTROY).status == OperationStatus.SCHEDULED


def test_reject_and_expiry(world, tenant_a):
    one, two = make_instance(tenant_a, name="one"), make_instance(tenant_a, name="two")
    op1 = services.operation_request(actor=world.user("a", "admin"), instance=one, operation=K.DESTROY)
    op1 = services.operation_reject(op1, actor=world.user("a", "owner"), reason="not today")
    assert op1.status == OperationStatus.CANCELLED and "not today" in op1.error
    op2 = services.operation_request(actor=world.user("a", "admin"), instance=two, operation=K.DESTROY)
    assert services.approvals_expire(now=timezone.now() + timedelta(hours=25)) == 1
    op2.refresh_from_db()
    assert op2.status == OperationStatus.CANCELLED and "expired" in op2.error
    with pytest.raises(ValidationError):
        services.operation_approve(op2, actor=world.user("a", "owner"))


def test_cancel_a_scheduled_operation(world, tenant_a):
    instance = make_instance(tenant_a)
    op = services.operation_request(actor=world.user("a", "operator"), instance=instance, operation=K.SUSPEND)
    op = services.operation_cancel(op, actor=world.user("a", "operator"))
    assert op.status == OperationStatus.CANCELLED
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.ACTIVE
    with pytest.raises(ValidationError, match="already ended"):
        services.operation_cancel(op, actor=world.user("a", "operator"))
