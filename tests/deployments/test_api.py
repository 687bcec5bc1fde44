"""API: instances, runbooks, operations (request/approve/reject/cancel), windows; errors are 400 JSON."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from apps.deployments.choices import Environment
from tests.factories.deployments import make_instance, make_runbooks
from tests.factories.targets import make_target


def test_instance_crud_and_operation_flow_with_four_eyes(world, api, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    make_runbooks(tenant)
    target = make_target(tenant, name="web-1")
    admin = api.as_user(world.user("a", "admin"))
    resp = admin.post(reverse("deploymentinstance-list"), {"name": "shop", "environment": "production", "version": "1.0",
                                                            "targets": [target.pk]}, format="json")
    assert resp.status_code == 201, resp.content
    instance_id = resp.json()["id"]
    assert resp.json()["status"] == "provisioning"
    # Provision needs no approval; run it by hand later — here only the request is checked.
    bad = admin.post(reverse("deploymentoperation-list"), {"instance": instance_id, "operation": "resume"}, format="json")
    assert bad.status_code == 400 and "it is provisioning" in bad.json()["detail"]
    bad = admin.post(reverse("deploymentoperation-list"), {"instance": instance_id, "operation": "scale", "parameters": {"cpu": 3}},
                     format="json")
    assert bad.status_code == 400, bad.content

    instance = make_instance(tenant, name="prod", environment=Environment.PRODUCTION)
    with django_capture_on_commit_callbacks(execute=False):
        resp = admin.post(reverse("deploymentoperation-list"), {"instance": instance.pk, "operation": "upgrade",
                                                                 "parameters": {"to_version": "2.0"}}, format="json")
    assert resp.status_code == 201 and resp.json()["status"] == "pending_approval"
    op_id = resp.json()["id"]
    assert admin.post(reverse("deploymentoperation-approve", args=[op_id])).status_code == 403
    owner = api.as_user(world.user("a", "owner"))
    with django_capture_on_commit_callbacks(execute=False):
        resp = owner.post(reverse("deploymentoperation-approve", args=[op_id]))
    assert resp.status_code == 200 and resp.json()["status"] == "scheduled"
    resp = owner.post(reverse("deploymentoperation-cancel", args=[op_id]))
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert owner.post(reverse("deploymentoperation-reject", args=[op_id]), {"reason": "x"}, format="json").status_code == 400


def test_windows_endpoint_scopes_instances(world, api):
    tenant = world.tenant("a")
    instance = make_instance(tenant)
    client = api.as_user(world.user("a", "operator"))
    now = timezone.now()
    resp = client.post(reverse("deploymentwindow-list"), {"name": "Sunday", "starts_at": now.isoformat(),
                                                          "ends_at": (now + timedelta(hours=2)).isoformat(), "instances": [instance.pk]},
                       format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["instance_ids"] == [instance.pk] and resp.json()["scope"] == "objects" and resp.json()["active_now"]
    from apps.maintenance.selectors import in_maintenance

    assert in_maintenance(tenant_id=tenant.pk, obj=instance)
    assert not in_maintenance(tenant_id=tenant.pk)


def test_runbook_refuses_another_tenants_job(world, api):
    from tests.factories.targets import make_job

    foreign = make_job(world.tenant("b"), name="theirs")
    resp = api.as_user(world.user("a", "admin")).post(reverse("deploymentrunbook-list"), {"action": "upgrade", "job": foreign.pk}, format="json")
    assert resp.status_code == 400
    own = make_job(world.tenant("a"), name="ours")
    resp = api.as_user(world.user("a", "admin")).post(reverse("deploymentrunbook-list"), {"action": "upgrade", "job": own.pk,
                                                                                         "strategy": "rolling", "batch_percent": 25}, format="json")
    assert resp.status_code == 201, resp.content
