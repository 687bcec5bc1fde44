from datetime import timedelta

from django.utils import timezone

from apps.deployments.models import DeploymentSchedule, Instance, Operation, ProvisioningRun, Runbook
from tests.factories.deployments import make_instance, make_runbook
from tests.isolation import IsolationCase


def _instance(w, key):
    return make_instance(w.tenant(key), name=f"iso-{key}-{Instance.objects.count()}")


def _operation(w, key):
    instance = _instance(w, key)
    return Operation.objects.create(tenant=instance.tenant, instance=instance, operation="suspend", status="pending_approval")


def _schedule(w, key):
    from apps.deployments.services import schedule_deployment

    instance = _instance(w, key)
    result = schedule_deployment(actor=None, tenant_id=None, instance_id=instance.pk, operation="suspend",
                                 scheduled_at=timezone.now() + timedelta(days=1))
    return DeploymentSchedule.objects.get(pk=result["schedule_id"])


def _window(w, key):
    from apps.maintenance.services import window_create

    now = timezone.now()
    return window_create(actor=None, tenant_id=w.tenant(key).pk, name=f"iso {key}", starts_at=now, ends_at=now + timedelta(hours=1),
                         objects=[_instance(w, key)], scope="objects")


def _provisioning(w, key):
    import uuid

    return ProvisioningRun.objects.create(tenant=w.tenant(key), service_id=1, request_event_id=uuid.uuid4())


def _window_instance(window):
    return window.objects_in_scope.first().object_id


CASES = [
    IsolationCase(
        name="deployments.instance",
        make=_instance,
        api_list="deploymentinstance-list",
        api_detail="deploymentinstance-detail",
        admin_model=Instance,
        create_payload=lambda w, foreign: {"name": "sneaky", "targets": list(foreign.targets.values_list("pk", flat=True))},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="deployments.runbook",
        make=lambda w, key: make_runbook(w.tenant(key), action="scale", job=None),
        api_list="deploymentrunbook-list",
        api_detail="deploymentrunbook-detail",
        admin_model=Runbook,
        create_payload=lambda w, foreign: {"action": "suspend", "job": foreign.job_id},
        patch_payload={"description": "hijacked"},
    ),
    IsolationCase(
        name="deployments.operation",
        make=_operation,
        api_list="deploymentoperation-list",
        api_detail="deploymentoperation-detail",
        admin_model=Operation,
        create_payload=lambda w, foreign: {"instance": foreign.instance_id, "operation": "resume"},
        patch_payload={"status": "cancelled"},
    ),
    IsolationCase(
        name="deployments.deploymentschedule",
        make=_schedule,
        api_list="deploymentschedule-list",
        api_detail="deploymentschedule-detail",
        admin_model=DeploymentSchedule,
        patch_payload={"operation": "destroy"},
    ),
    IsolationCase(
        name="deployments.window",
        make=_window,
        api_list="deploymentwindow-list",
        api_detail="deploymentwindow-detail",
        create_payload=lambda w, foreign: {"name": "sneaky", "starts_at": timezone.now().isoformat(),
                                           "ends_at": (timezone.now() + timedelta(hours=1)).isoformat(), "instances": [_window_instance(foreign)]},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(name="deployments.provisioningrun", make=_provisioning, admin_model=ProvisioningRun),
]
