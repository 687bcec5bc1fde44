"""Demo rows: an acme production instance on two (unreachable) demo hosts, an upgrade runbook
(rolling 50 %) and a weekly upgrade schedule. Idempotent."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .choices import Environment, InstanceStatus, RunbookAction, Strategy
from .models import DeploymentSchedule, Instance, Runbook


def seed(*, orgs, stdout) -> None:
    from apps.targets.models import Job, Target
    from apps.targets.services import job_create, target_create

    from .services import schedule_deployment

    tenant = orgs.get("acme")
    if tenant is None:
        return
    hosts = []
    for name in ("acme-app-1", "acme-app-2"):
        host = Target.objects.filter(tenant=tenant, name=name).first() or target_create(
            actor=None, tenant=tenant, name=name, hostname=f"{name}.demo.invalid")
        hosts.append(host)
    job = Job.objects.filter(tenant=tenant, name="deploy: upgrade app").first() or job_create(
        actor=None, tenant=tenant, name="deploy: upgrade app", overlap_policy="parallel",
        steps=[{"name": "install", "type": "ssh.exec", "command": "echo installing {{ version }} on {{ target.name }}"}],
        parameters_schema={"type": "object", "properties": {"version": {"type": "string"}}},
    )
    instance, created = Instance.objects.get_or_create(
        tenant=tenant, name="acme-shop",
        defaults={"environment": Environment.PRODUCTION, "version": "1.4.2", "status": InstanceStatus.ACTIVE, "cpu_cores": 4, "memory_gb": 16},
    )
    if created:
        instance.targets.set(hosts)
    Runbook.objects.get_or_create(tenant=tenant, instance=None, action=RunbookAction.UPGRADE,
                                  defaults={"job": job, "strategy": Strategy.ROLLING, "batch_percent": 50})
    if not DeploymentSchedule.objects.filter(instance=instance).exists():
        schedule_deployment(actor=None, tenant_id=tenant.pk, operation="upgrade", instance_id=instance.pk,
                            scheduled_at=timezone.now() + timedelta(days=1), cron_expression="0 2 * * 0",
                            upgrade_request={"to_version": "1.5.0", "rollback_on_failure": True})
    stdout.write("deployments: acme-shop instance, upgrade runbook, weekly schedule\n")
