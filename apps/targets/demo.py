"""Demo targets for acme: an SSH credential (a placeholder password: set a real one to run),
two targets on this machine, a group, a versioned job with an `ssh.exec` step and a weekday
schedule that is disabled until someone enables it. Idempotent."""

from .choices import CredentialKind, Protocol, TargetOS
from .models import Credential, Job, JobSchedule, Target, TargetGroup
from .services import definitions, schedules

STEPS_V1 = [{"name": "disk usage", "type": "ssh.exec", "command": "df -h {{ path }}", "timeout": 60}]
STEPS_V2 = [*STEPS_V1, {"name": "largest dirs", "type": "ssh.exec", "command": "du -xh {{ path }} 2>/dev/null | sort -rh | head -5", "timeout": 120}]
PARAMS = {"type": "object", "properties": {"path": {"type": "string", "default": "/"}}}


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    cred = Credential.objects.filter(tenant=acme, name="demo ssh (localhost)").first() or definitions.credential_create(
        actor=None, tenant=acme, name="demo ssh (localhost)", kind=CredentialKind.SSH_PASSWORD, username="opsdemo",
        secret="change-me", description="Placeholder password: rotate it to a real account before running the demo job.",
    )
    group = TargetGroup.objects.filter(tenant=acme, name="demo linux").first() or definitions.group_create(
        actor=None, tenant=acme, name="demo linux", description="Targets on this machine")
    hosts = []
    for name, hostname in (("localhost-ipv4", "127.0.0.1"), ("localhost-name", "localhost")):
        target = Target.objects.filter(tenant=acme, name=name).first() or definitions.target_create(
            actor=None, tenant=acme, name=name, hostname=hostname, os=TargetOS.LINUX, protocol=Protocol.SSH, port=22,
            credential=cred, tags=["demo"], groups=[group])
        hosts.append(target)
    job = Job.objects.filter(tenant=acme, name="Disk usage report").first()
    if job is None:
        job = definitions.job_create(actor=None, tenant=acme, name="Disk usage report", steps=STEPS_V1, parameters_schema=PARAMS,
                                     description="df on each target", default_groups=[group])
        definitions.job_update(job, actor=None, steps=STEPS_V2, description="df and the largest directories")  # version 2
    if not JobSchedule.objects.filter(job=job).exists():
        schedules.schedule_create(actor=None, job=job, name="weekday mornings", cron="0 6 * * 1-5", timezone=acme.timezone or "UTC",
                                  params={"path": "/"}, groups=[group], enabled=False)
        stdout.write("targets: acme credential, 2 localhost targets, job 'Disk usage report' (2 versions), disabled schedule\n")
