from apps.targets.models import Credential, Job, JobRun, JobSchedule, Target, TargetGroup
from tests.factories.targets import make_credential, make_group, make_job, make_target
from tests.isolation import IsolationCase


def _run(w, key):
    from apps.targets.choices import RunStatus

    job = make_job(w.tenant(key), name=f"job-run-{key}")
    return JobRun.objects.create(tenant=w.tenant(key), job=job, version=job.current_version, status=RunStatus.SUCCEEDED)


def _schedule(w, key):
    job = make_job(w.tenant(key), name=f"job-sched-{key}")
    return JobSchedule.objects.create(tenant=w.tenant(key), job=job, name="nightly", cron="0 3 * * *", timezone="Europe/Berlin")


CASES = [
    IsolationCase(
        name="targets.credential",
        make=lambda w, key: make_credential(w.tenant(key), name=f"cred-{key}"),
        api_list="credential-list", api_detail="credential-detail", admin_model=Credential,
        create_payload=lambda w, foreign: {"name": "sneaky", "kind": "ssh_password", "tenant": foreign.tenant_id, "secret": "x"},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="targets.targetgroup",
        make=lambda w, key: make_group(w.tenant(key), name=f"group-{key}"),
        api_list="targetgroup-list", api_detail="targetgroup-detail", admin_model=TargetGroup,
        create_payload=lambda w, foreign: {"name": "sneaky", "tenant": foreign.tenant_id},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="targets.target",
        make=lambda w, key: make_target(w.tenant(key), name=f"target-{key}", credential=make_credential(w.tenant(key), name=f"tc-{key}")),
        api_list="target-list", api_detail="target-detail", admin_model=Target,
        create_payload=lambda w, foreign: {"name": "sneaky", "hostname": "x", "credential": foreign.credential_id},
        patch_payload={"hostname": "evil.example"},
    ),
    IsolationCase(
        name="targets.job",
        make=lambda w, key: make_job(w.tenant(key), name=f"job-{key}"),
        api_list="job-list", api_detail="job-detail", admin_model=Job,
        create_payload=lambda w, foreign: {"name": "sneaky", "steps": [{"type": "ssh.exec", "command": "id"}], "tenant": foreign.tenant_id},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="targets.jobschedule",
        make=_schedule,
        api_list="jobschedule-list", api_detail="jobschedule-detail", admin_model=JobSchedule,
        create_payload=lambda w, foreign: {"job": foreign.job_id, "name": "sneaky", "cron": "* * * * *"},
        patch_payload={"cron": "* * * * *"},
    ),
    IsolationCase(
        name="targets.jobrun",
        make=_run,
        api_list="jobrun-list", api_detail="jobrun-detail", admin_model=JobRun,
    ),
]
