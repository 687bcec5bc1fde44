"""customer_service.provision_requested → the tenant's provisioning runbook job on the real sshd →
customer_service_set_status (docs/customers.md)."""

from __future__ import annotations

import pytest

from apps.deployments.choices import ProvisioningStatus, RunbookAction
from apps.deployments.models import ProvisioningRun
from apps.tenants.customers.choices import CustomerState, ServiceStatus
from apps.tenants.customers.services import customer_service_provision
from tests.factories.customers import customer_of
from tests.factories.deployments import make_runbook
from tests.factories.targets import make_credential, make_job, make_target


@pytest.fixture
def customer(world):
    c = customer_of(world, "a")
    c.state = CustomerState.ACTIVE
    c.save()
    return c


def _job(world, sshd, tmp_path, command):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    job = make_job(tenant, name="provision-service", steps=[{"name": "provision", "type": "ssh.exec", "command": command}],
                   parameters_schema={"type": "object", "properties": {"plan": {"type": "string"}, "account_number": {"type": "string"}}})
    job.default_targets.set([make_target(tenant, name="prov-host", port=sshd.port, credential=cred)])
    return make_runbook(tenant, action=RunbookAction.CUSTOMER_SERVICE_PROVISION, job=job)


def test_provisioning_runs_the_runbook_and_activates_the_service(world, sshd, tmp_path, customer, django_capture_on_commit_callbacks):
    marker = tmp_path / "provisioned"
    _job(world, sshd, tmp_path, f"echo {{{{ plan }}}} > {marker}")
    with django_capture_on_commit_callbacks(execute=True):
        service = customer_service_provision(actor=world.user("a", "admin"), customer=customer, plan="fiber-100", parameters={})
    service.refresh_from_db()
    row = ProvisioningRun.objects.get(service_id=service.pk)
    assert row.status == ProvisioningStatus.SUCCEEDED and row.job_run.status == "succeeded"
    assert service.status == ServiceStatus.ACTIVE and service.job_run_id == row.job_run_id
    assert marker.read_text().strip() == "fiber-100"


def test_failing_provisioning_job_fails_the_service(world, sshd, tmp_path, customer, django_capture_on_commit_callbacks):
    _job(world, sshd, tmp_path, "echo no capacity >&2; exit 4")
    with django_capture_on_commit_callbacks(execute=True):
        service = customer_service_provision(actor=world.user("a", "admin"), customer=customer, plan="fiber-100", parameters={})
    service.refresh_from_db()
    assert service.status == ServiceStatus.FAILED and "failed" in service.last_error
    assert ProvisioningRun.objects.get(service_id=service.pk).status == ProvisioningStatus.FAILED


def test_without_runbook_the_service_fails_with_a_clear_error(world, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        service = customer_service_provision(actor=world.user("a", "admin"), customer=customer, plan="fiber-100", parameters={})
    service.refresh_from_db()
    assert service.status == ServiceStatus.FAILED and "No runbook is configured for customer_service.provision" in service.last_error
