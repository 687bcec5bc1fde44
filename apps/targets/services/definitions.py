"""Credentials, targets, groups and versioned jobs."""

from __future__ import annotations

import asyncio

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from apps.core.audit import config_change, config_deleted
from apps.core.choices import Role
from apps.core.crypto import PLACEHOLDER, encrypt
from apps.core.policy import policy
from apps.core.services import assign_tenant
from apps.core.tenancy import acting

from ..choices import ConnectionResult, CredentialKind, NotifyOn, Protocol, TargetOS
from ..definition import validate_parameters_schema, validate_steps
from ..models import Credential, Job, JobVersion, Target, TargetGroup

VERSIONED_FIELDS = ("description", "parameters_schema", "steps", "concurrency", "on_failure", "notify", "run_timeout_seconds")
NOTIFY_SCHEMA = Draft202012Validator({
    "type": "object",
    "properties": {
        "on": {"enum": list(NotifyOn.values)},
        "roles": {"type": "array", "items": {"enum": list(Role.values)}},
        "user_ids": {"type": "array", "items": {"type": "integer"}},
        "priority": {"enum": ["low", "medium", "high", "urgent"]},
    },
    "additionalProperties": False,
})


def _require(actor, action: str, obj) -> None:
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(f"Your role does not allow {action} on this {obj._meta.verbose_name}.")


def _set(obj, fields: dict, allowed) -> None:
    for key, value in fields.items():
        if key not in allowed:
            raise ValidationError({key: "This field cannot be changed here."})
        setattr(obj, key, value)


def _same_tenant(rows, tenant_id, field: str) -> None:
    for row in rows:
        if row.tenant_id != tenant_id:
            raise ValidationError({field: f"{row} belongs to another tenant."})


# -- credentials -------------------------------------------------------------------------------
def _seal(value: str | None) -> str | None:
    if value is None or value == PLACEHOLDER:
        return None
    return encrypt(value) if value else ""


def credential_create(*, actor, name: str, kind: str, tenant=None, username: str = "", secret: str = "",
                      passphrase: str = "", description: str = "") -> Credential:
    """Create a credential; the secret (and key passphrase) are sealed before they touch the row."""
    cred = Credential(tenant=tenant, name=name, kind=kind, username=username, description=description)
    assign_tenant(cred, actor=actor)
    cred.secret = _seal(secret) or ""
    cred.passphrase = (_seal(passphrase) or "") if kind == CredentialKind.SSH_KEY else ""
    with transaction.atomic(), config_change(cred, actor=actor):
        cred.full_clean(exclude=["secret", "passphrase"])
        cred.save()
    return cred


def credential_update(cred: Credential, *, actor, secret: str | None = None, passphrase: str | None = None, **fields) -> Credential:
    """Change a credential's description fields; a secret sent as the placeholder keeps the stored one."""
    _require(actor, "change", cred)
    _set(cred, fields, {"name", "kind", "username", "description", "tenant"})
    assign_tenant(cred, actor=actor)
    if (sealed := _seal(secret)) is not None:
        cred.secret, cred.rotated_at = sealed, timezone.now()
    if (sealed := _seal(passphrase)) is not None:
        cred.passphrase = sealed
    with transaction.atomic(), config_change(cred, actor=actor):
        cred.full_clean(exclude=["secret", "passphrase"])
        cred.save()
    return cred


def credential_rotate(cred: Credential, *, actor, secret: str, passphrase: str | None = None) -> Credential:
    """Replace the secret of a credential (the value is sealed under the newest key version)."""
    _require(actor, "rotate", cred)
    if not secret or secret == PLACEHOLDER:
        raise ValidationError({"secret": "Give the new secret."})
    with transaction.atomic(), config_change(cred, actor=actor) as change:
        change["note"] = "secret rotated"
        cred.secret = encrypt(secret)
        if passphrase is not None and passphrase != PLACEHOLDER:
            cred.passphrase = encrypt(passphrase) if passphrase else ""
        cred.rotated_at = timezone.now()
        cred.save(update_fields=["secret", "passphrase", "rotated_at", "updated_at"])
    return cred


def credential_delete(cred: Credential, *, actor) -> None:
    _require(actor, "delete", cred)
    with transaction.atomic():
        config_deleted(cred, actor=actor)
        cred.delete()


def _check_grantee(cred: Credential, user) -> None:
    ctx = acting(user)
    reach = ctx.is_platform or ctx.tenant_id == cred.tenant_id or cred.tenant_id in ctx.served_tenant_ids
    if not reach:
        raise ValidationError({"user": f"{user} is not a member of this credential's tenant or a partner serving it."})


def credential_share(cred: Credential, *, actor, user, permission: str = "view") -> None:
    """Grant one user an object permission on one credential (django-guardian)."""
    from guardian.shortcuts import assign_perm

    _require(actor, "share", cred)
    if permission not in ("view", "change"):
        raise ValidationError({"permission": "Share with view or change."})
    _check_grantee(cred, user)
    assign_perm(f"targets.{permission}_credential", user, cred)


def credential_unshare(cred: Credential, *, actor, user, permission: str = "view") -> None:
    from guardian.shortcuts import remove_perm

    _require(actor, "share", cred)
    remove_perm(f"targets.{permission}_credential", user, cred)


# -- groups ------------------------------------------------------------------------------------
def group_create(*, actor, name: str, tenant=None, description: str = "") -> TargetGroup:
    group = TargetGroup(tenant=tenant, name=name, description=description)
    assign_tenant(group, actor=actor)
    with transaction.atomic(), config_change(group, actor=actor):
        group.full_clean()
        group.save()
    return group


def group_update(group: TargetGroup, *, actor, **fields) -> TargetGroup:
    _require(actor, "change", group)
    _set(group, fields, {"name", "description", "tenant"})
    assign_tenant(group, actor=actor)
    with transaction.atomic(), config_change(group, actor=actor):
        group.full_clean()
        group.save()
    return group


def group_delete(group: TargetGroup, *, actor) -> None:
    _require(actor, "delete", group)
    with transaction.atomic():
        config_deleted(group, actor=actor)
        group.delete()


# -- targets -----------------------------------------------------------------------------------
TARGET_FIELDS = {"name", "hostname", "os", "protocol", "port", "winrm_transport", "winrm_scheme", "verify_tls", "credential", "tags", "enabled", "tenant"}


def target_create(*, actor, groups=(), **fields) -> Target:
    target = Target()
    _set(target, fields, TARGET_FIELDS)
    if "os" not in fields:
        target.os = TargetOS.WINDOWS if target.protocol == Protocol.WINRM else TargetOS.LINUX
    assign_tenant(target, actor=actor)
    _same_tenant(groups, target.tenant_id, "groups")
    with transaction.atomic(), config_change(target, actor=actor):
        target.full_clean()
        target.save()
        target.groups.set(groups)
    return target


def target_update(target: Target, *, actor, groups=None, **fields) -> Target:
    _require(actor, "change", target)
    _set(target, fields, TARGET_FIELDS)
    assign_tenant(target, actor=actor)
    with transaction.atomic(), config_change(target, actor=actor) as change:
        target.full_clean()
        target.save()
        change["fields"] = ["groups"] if groups is not None else []
        if groups is not None:
            _same_tenant(groups, target.tenant_id, "groups")
            target.groups.set(groups)
    return target


def target_delete(target: Target, *, actor) -> None:
    _require(actor, "delete", target)
    with transaction.atomic():
        config_deleted(target, actor=actor)
        target.delete()


async def _probe(spec, timeout: float) -> tuple[bool, str]:
    from ..executors import executor_for

    executor = executor_for(spec.protocol, concurrency=1)
    out: list[str] = []
    try:
        conn = await executor.connect(spec, timeout=timeout)
        try:
            if spec.protocol == Protocol.SSH:
                code = await conn.exec("echo opsportal-ok; uname -n", shell="sh", timeout=timeout, emit=lambda s, t: out.append(t))
            else:
                code = await conn.exec("Write-Output opsportal-ok; hostname", shell="powershell", timeout=timeout, emit=lambda s, t: out.append(t))
        finally:
            await conn.close()
    except Exception as exc:
        return False, str(exc) or type(exc).__name__
    finally:
        await executor.aclose()
    text = "".join(out).strip()
    return code == 0, (f"exit {code}: " if code else "") + text[:500]


def target_test_connection(target: Target, *, actor) -> Target:
    """Really connect to the target and run a trivial command; store and return the result."""
    from django.conf import settings

    from ..runner import target_spec

    _require(actor, "change", target)
    if target.credential_id is None:
        ok, message = False, "The target has no credential."
    else:
        ok, message = asyncio.run(_probe(target_spec(target), settings.TARGETS_CONNECT_TIMEOUT))
    Target.objects.filter(pk=target.pk).update(
        last_test_at=timezone.now(), last_test_result=ConnectionResult.OK if ok else ConnectionResult.FAILED, last_test_message=message,
    )
    target.refresh_from_db()
    return target


# -- jobs --------------------------------------------------------------------------------------
def _validate_definition(data: dict) -> None:
    validate_parameters_schema(data.get("parameters_schema") or {})
    validate_steps(data.get("steps"), data.get("parameters_schema") or {})
    errs = list(NOTIFY_SCHEMA.iter_errors(data.get("notify") or {}))
    if errs:
        raise ValidationError({"notify": [e.message for e in errs]})


def _new_version(job: Job, data: dict, actor) -> JobVersion:
    last = job.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = JobVersion(job=job, number=last + 1, created_by=actor if getattr(actor, "pk", None) else None, **data)
    version.full_clean()
    version.save()
    Job.objects.filter(pk=job.pk).update(current_version=version)
    job.current_version = version
    return version


def job_create(*, actor, name: str, steps, tenant=None, overlap_policy: str | None = None, enabled: bool = True,
               default_targets=(), default_groups=(), **definition) -> Job:
    """Create a job and its version 1."""
    unknown = set(definition) - set(VERSIONED_FIELDS)
    if unknown:
        raise ValidationError({k: "Unknown field." for k in unknown})
    data = {k: v for k, v in {**definition, "steps": steps}.items() if v is not None}
    _validate_definition(data)
    job = Job(tenant=tenant, name=name, enabled=enabled, **({"overlap_policy": overlap_policy} if overlap_policy else {}))
    assign_tenant(job, actor=actor)
    _same_tenant(default_targets, job.tenant_id, "default_targets")
    _same_tenant(default_groups, job.tenant_id, "default_groups")
    with transaction.atomic(), config_change(job, actor=actor):
        job.full_clean()
        job.save()
        job.default_targets.set(default_targets)
        job.default_groups.set(default_groups)
        _new_version(job, data, actor)
    return job


def job_update(job: Job, *, actor, default_targets=None, default_groups=None, **fields) -> Job:
    """Change a job; any change to its definition creates a new version (runs keep theirs)."""
    _require(actor, "change", job)
    definition = {k: fields.pop(k) for k in list(fields) if k in VERSIONED_FIELDS}
    _set(job, fields, {"name", "overlap_policy", "enabled", "tenant"})
    assign_tenant(job, actor=actor)
    current = job.current_version
    merged = {k: getattr(current, k) for k in VERSIONED_FIELDS} if current else {}
    merged.update(definition)
    changed = current is None or any(merged[k] != getattr(current, k) for k in VERSIONED_FIELDS)
    if changed:
        _validate_definition(merged)
    with transaction.atomic(), config_change(job, actor=actor) as change:
        job.full_clean()
        job.save()
        if default_targets is not None:
            _same_tenant(default_targets, job.tenant_id, "default_targets")
            job.default_targets.set(default_targets)
        if default_groups is not None:
            _same_tenant(default_groups, job.tenant_id, "default_groups")
            job.default_groups.set(default_groups)
        if changed:
            version = _new_version(job, merged, actor)
            if current is not None:
                fields = [k for k in VERSIONED_FIELDS if merged[k] != getattr(current, k)]
                change["note"] = f"definition version {version.number} ({', '.join(fields)})"
        for schedule in job.schedules.all():
            from ..scheduling import sync_periodic_task

            sync_periodic_task(schedule)
    return job


def job_delete(job: Job, *, actor) -> None:
    """Delete a job that never ran (runs keep their job; disable it instead)."""
    _require(actor, "delete", job)
    if job.runs.exists():
        raise ValidationError("This job has runs; disable it instead of deleting it.")
    from ..scheduling import delete_periodic_task

    with transaction.atomic():
        for schedule in job.schedules.all():
            delete_periodic_task(schedule)
        Job.objects.filter(pk=job.pk).update(current_version=None)
        config_deleted(job, actor=actor)
        job.delete()

