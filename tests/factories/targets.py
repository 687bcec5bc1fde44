"""Factories for the targets app (credentials, targets, jobs with a version)."""

from __future__ import annotations

from apps.core.crypto import encrypt
from apps.targets.choices import CredentialKind, Protocol
from apps.targets.models import Credential, Job, JobVersion, Target, TargetGroup


def make_credential(tenant, *, name="cred", kind=CredentialKind.SSH_KEY, username="root", secret="s3cret", passphrase=""):
    return Credential.objects.create(
        tenant=tenant, name=name, kind=kind, username=username, secret=encrypt(secret) if secret else "",
        passphrase=encrypt(passphrase) if passphrase else "",
    )


def make_target(tenant, *, name="host", hostname="127.0.0.1", port=22, credential=None, protocol=Protocol.SSH, **extra):
    return Target.objects.create(tenant=tenant, name=name, hostname=hostname, port=port, credential=credential, protocol=protocol, **extra)


def make_group(tenant, *, name="group"):
    return TargetGroup.objects.create(tenant=tenant, name=name)


def make_job(tenant, *, name="job", steps=None, parameters_schema=None, **version):
    job = Job.objects.create(tenant=tenant, name=name)
    v = JobVersion.objects.create(job=job, number=1, steps=steps or [{"type": "ssh.exec", "command": "true"}], parameters_schema=parameters_schema or {}, **version)
    Job.objects.filter(pk=job.pk).update(current_version=v)
    job.refresh_from_db()
    return job
