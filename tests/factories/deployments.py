"""Factories for the deployments app (rows written directly; the services are tested themselves)."""

from __future__ import annotations

from apps.deployments.choices import Environment, InstanceStatus, RunbookAction, Strategy
from apps.deployments.models import Instance, Runbook
from tests.factories.targets import make_job, make_target


def make_instance(tenant, *, name="app-1", status=InstanceStatus.ACTIVE, version="1.0", environment=Environment.STAGING, targets=None, **extra):
    instance = Instance.objects.create(tenant=tenant, name=name, status=status, version=version, environment=environment, **extra)
    if targets is None:
        targets = [make_target(tenant, name=f"{name}-host")]
    instance.targets.set(targets)
    return instance


def make_runbook(tenant, *, action=RunbookAction.UPGRADE, job=None, instance=None, strategy=Strategy.ALL_AT_ONCE, batch_percent=25, **extra):
    job = job or make_job(tenant, name=f"runbook-{action}-{Runbook.objects.count()}")
    return Runbook.objects.create(tenant=tenant, action=action, job=job, instance=instance, strategy=strategy, batch_percent=batch_percent, **extra)


def make_runbooks(tenant, *, job=None) -> dict:
    """One tenant runbook per operation, all running `job` (default: a job that does `true`)."""
    job = job or make_job(tenant, name="deploy-noop")
    return {a: make_runbook(tenant, action=a, job=job) for a in RunbookAction.values if a != RunbookAction.CUSTOMER_SERVICE_PROVISION}
