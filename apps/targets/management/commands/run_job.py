"""Run a job from the command line (cron on a host, a runbook, a smoke test)."""

import json
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...choices import FINAL_RUN_STATUSES, RunStatus, Trigger
from ...models import Job, Target, TargetGroup
from ...services import runs as run_services


def _param(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise CommandError(f"--param takes KEY=VALUE, not {item!r}.")
    try:
        return key, json.loads(raw)  # numbers, booleans, lists; anything else is a string
    except ValueError:
        return key, raw


class Command(BaseCommand):
    help = ("Queue a run of a job (its current version) on its default targets or on --target/--group; "
            "--wait follows it to the end, --inline executes it in this process (no worker needed).")

    def add_arguments(self, parser):
        parser.add_argument("job", help="Job id, or its name together with --tenant.")
        parser.add_argument("--tenant", help="Tenant slug (needed when the job is given by name).")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="Run parameter (JSON or text; repeatable).")
        parser.add_argument("--target", action="append", default=None, metavar="NAME", help="Target name (repeatable).")
        parser.add_argument("--group", action="append", default=None, metavar="NAME", help="Target group name (repeatable).")
        parser.add_argument("--check", action="store_true", help="Check mode: connect and render, execute nothing.")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME", help="Run as this user (their permissions apply).")
        parser.add_argument("--wait", action="store_true", help="Wait until the run has finished.")
        parser.add_argument("--inline", action="store_true", help="Execute the run in this process.")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds --wait waits at most.")

    def _job(self, ref: str, tenant: str | None) -> Job:
        jobs = Job.objects.select_related("tenant")
        job = jobs.filter(pk=int(ref)).first() if ref.isdigit() else None
        if job is None:
            if not tenant:
                raise CommandError(f"No job with id {ref!r}; give --tenant to find a job by name.")
            job = jobs.filter(tenant__slug=tenant, name=ref).first()
        if job is None:
            raise CommandError(f"No job {ref!r}{' in tenant ' + tenant if tenant else ''}.")
        return job

    def handle(self, *args, job, tenant, param, target, group, check, as_user, wait, inline, timeout, **options):
        job = self._job(job, tenant)
        actor = None
        if as_user:
            actor = get_user_model().objects.filter(username=as_user).first()
            if actor is None:
                raise CommandError(f"No user {as_user!r}.")
        targets = groups = None
        if target is not None or group is not None:
            targets = list(Target.objects.filter(tenant_id=job.tenant_id, name__in=target or []))
            groups = list(TargetGroup.objects.filter(tenant_id=job.tenant_id, name__in=group or []))
            missing = set(target or []) - {t.name for t in targets} | set(group or []) - {g.name for g in groups}
            if missing:
                raise CommandError(f"Not in tenant {job.tenant.slug}: {', '.join(sorted(missing))}.")
        try:
            run = run_services.job_run_create(
                job, actor=actor, params=dict(_param(p) for p in param), targets=targets, groups=groups,
                trigger=Trigger.USER if actor else Trigger.COMMAND, check_mode=check,
            )
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc
        self.stdout.write(f"run #{run.pk} of {job.name} v{run.version.number} queued on {run.target_count} target(s)")
        if inline:
            run_services.run_execute(run_id=run.pk)  # a no-op if a worker claimed it first
        if not (wait or inline):
            return
        deadline = time.monotonic() + timeout
        run.refresh_from_db()
        while run.status not in FINAL_RUN_STATUSES:
            if time.monotonic() > deadline:
                raise CommandError(f"run #{run.pk} still {run.status} after {timeout:g} s")
            time.sleep(0.5)
            run.refresh_from_db()
        self.stdout.write(f"run #{run.pk}: {run.status} in {run.duration_seconds or 0:.1f} s, steps {json.dumps(run.counts)}")
        if run.error:
            self.stdout.write(run.error)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"run #{run.pk} {run.status}")
