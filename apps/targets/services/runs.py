"""Runs: create, execute (claim → runner → finish, always), cancel, retry, reap; dead letters."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.core.events import publish
from apps.core.policy import policy

from ..choices import ACTIVE_RUN_STATUSES, NotifyOn, OverlapPolicy, RunStatus, StepStatus, Trigger
from ..definition import validate_params
from ..models import FailedTask, Job, JobRun, JobRunStep, Target

log = logging.getLogger(__name__)
EVENT_FOR = {
    RunStatus.SUCCEEDED: "job_run.succeeded",
    RunStatus.FAILED: "job_run.failed",
    RunStatus.TIMED_OUT: "job_run.failed",
    RunStatus.CANCELLED: "job_run.cancelled",
}
DEFAULT_NOTIFY = {"on": NotifyOn.FAILURE, "roles": ["owner", "admin"]}


def _resolve_targets(job: Job, *, targets=None, groups=None) -> list[Target]:
    if targets is None and groups is None:
        targets, groups = list(job.default_targets.all()), list(job.default_groups.all())
    chosen = {t.pk: t for t in (targets or [])}
    for group in groups or []:
        for t in group.targets.all():
            chosen.setdefault(t.pk, t)
    rows = [t for t in chosen.values() if t.enabled]
    for t in rows:
        if t.tenant_id != job.tenant_id:
            raise ValidationError({"targets": f"Target {t} belongs to another tenant."})
    if not rows:
        raise ValidationError({"targets": "The run has no enabled target (give targets or groups, or set the job's defaults)."})
    if len(rows) > settings.TARGETS_MAX_TARGETS_PER_RUN:
        raise ValidationError({"targets": f"At most {settings.TARGETS_MAX_TARGETS_PER_RUN} targets per run."})
    return sorted(rows, key=lambda t: t.name)


def job_run_create(job: Job, *, actor, params: dict | None = None, targets=None, groups=None, trigger: str = Trigger.USER,
                   schedule=None, check_mode: bool = False, retry_of: JobRun | None = None, version=None) -> JobRun:
    """Queue a run of the job's current version (or `version`) on the given or default targets.

    Parameters are validated against the version's schema; the overlap policy is applied
    (`skip` refuses while a run of the job is active, `queue` waits for it, `parallel` starts)."""
    if actor is not None and not policy.allows_object(actor, "run", job):
        raise PermissionDenied("Your role does not allow running this job.")
    if not job.enabled:
        raise ValidationError("This job is disabled.")
    version = version or job.current_version
    if version is None:
        raise ValidationError("This job has no version to run.")
    params = validate_params(version.parameters_schema, params if params is not None else {})
    rows = _resolve_targets(job, targets=targets, groups=groups)
    with transaction.atomic():
        Job.objects.select_for_update().filter(pk=job.pk).first()  # serialise overlap decisions per job
        active = job.runs.filter(status__in=ACTIVE_RUN_STATUSES).order_by("created_at").first()
        if active and job.overlap_policy == OverlapPolicy.SKIP and not check_mode:
            raise ValidationError(f"Run #{active.pk} of this job is still {active.status} (overlap policy: skip).")
        run = JobRun(
            tenant_id=job.tenant_id, job=job, version=version, params=params, trigger=trigger, schedule=schedule,
            triggered_by=actor if getattr(actor, "pk", None) else None, check_mode=check_mode, retry_of=retry_of,
            target_count=len(rows), counts={StepStatus.PENDING: len(rows) * len(version.steps)},
        )
        run.full_clean()
        run.save()
        JobRunStep.objects.bulk_create(
            [
                JobRunStep(run=run, target=t, target_name=t.name, step_index=i, step_name=step.get("name") or step["type"], step_type=step["type"])
                for t in rows for i, step in enumerate(version.steps)
            ],
            batch_size=2000,
        )
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int, countdown: float | None = None) -> None:
    from ..tasks import execute_run_task

    try:
        execute_run_task.apply_async(args=[run_id], countdown=countdown)
    except Exception as exc:  # broker down: the reaper re-enqueues queued runs
        log.warning("run %s not enqueued (%s); the reaper will retry", run_id, exc)


def _claim(run_id: int, worker: str | None = None) -> JobRun | None:
    now = timezone.now()
    claimed = JobRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, cancel_requested_at__isnull=True).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=(worker or socket.gethostname())[:200],
    )
    if not claimed:
        return None
    run = JobRun.objects.select_related("job", "version", "tenant").get(pk=run_id)
    publish("job_run.started", tenant=run.tenant_id, payload=_payload(run), actor=run.triggered_by)
    return run


def run_execute(*, run_id: int, worker: str | None = None) -> JobRun | None:
    """Execute one queued run (the Celery task's body; `worker` is its Celery node name, else
    this host's name). Returns None when the run is not queued (already taken, finished, or
    cancelled). Whatever happens inside, the row ends in a final status with the error stored."""
    from .. import runner

    run = JobRun.objects.select_related("job").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return None
    if run.job.overlap_policy == OverlapPolicy.QUEUE and not run.check_mode:
        earlier = run.job.runs.filter(status__in=ACTIVE_RUN_STATUSES, created_at__lt=run.created_at).exclude(pk=run.pk)
        if earlier.exists():
            _enqueue(run.pk, countdown=5)  # wait behind the earlier run
            return None
    run = _claim(run_id, worker)
    if run is None:
        return None
    try:
        outcome = runner.execute(run)
        status, error, counts = outcome.status, outcome.error, outcome.counts
    except BaseException as exc:
        # Users see a short reason; the traceback (server paths, library internals) is logged only.
        log.exception("run %s: the runner failed", run_id)
        status, error, counts = RunStatus.FAILED, runner.failure_reason(exc), None
        if isinstance(exc, runner.DB_ERRORS):
            connection.close()  # record the failure on a new connection
        runner.with_db(lambda: JobRunStep.objects.filter(run_id=run_id, status__in=[StepStatus.PENDING, StepStatus.RUNNING]).update(
            status=StepStatus.FAILED, error="Not recorded: the runner failed.", finished_at=timezone.now(),
        ), what=f"failing run {run_id}")
        if not isinstance(exc, Exception):
            runner.with_db(lambda: _finish(run, status=status, error=error, counts=counts), what=f"finishing run {run_id}")
            raise
    return runner.with_db(lambda: _finish(run, status=status, error=error, counts=counts), what=f"finishing run {run_id}")


def _finish(run: JobRun, *, status: str, error: str, counts: dict | None, only_from=(RunStatus.RUNNING,)) -> JobRun:
    with transaction.atomic():
        if counts is None:
            counts = dict(JobRunStep.objects.filter(run=run).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        failed_targets = JobRunStep.objects.filter(run=run, status__in=[StepStatus.FAILED, StepStatus.TIMED_OUT]).values("target_name").distinct().count()
        done = JobRun.objects.filter(pk=run.pk, status__in=only_from).update(
            status=status, error=error[:20000], finished_at=timezone.now(), counts=counts, failed_target_count=failed_targets,
        )
        run.refresh_from_db()
        if done:
            publish(EVENT_FOR[status], tenant=run.tenant_id, payload=_payload(run, final=True), actor=run.triggered_by)
    return run


def _first_error_lines(run: JobRun, limit: int = 5) -> str:
    step = (
        JobRunStep.objects.filter(run=run, status__in=[StepStatus.FAILED, StepStatus.TIMED_OUT])
        .order_by("finished_at", "id").only("target_name", "step_name", "error", "stderr", "stdout").first()
    )
    if step is None:
        return run.error.splitlines()[0] if run.error else ""
    text = "\n".join(x for x in (step.error, step.stderr.strip() or step.stdout.strip()) if x)
    return f"{step.target_name} / {step.step_name}: " + "\n".join(text.splitlines()[:limit])[:1000]


def _payload(run: JobRun, *, final: bool = False) -> dict:
    payload = {
        "id": run.pk,
        "object_type": "targets.jobrun",
        "title": f"Job {run.job.name} run #{run.pk} {run.get_status_display().lower()}",
        "url": f"/admin/targets/jobrun/{run.pk}/change/",
        "job_id": run.job_id,
        "job_name": run.job.name,
        "version": run.version.number,
        "status": run.status,
        "trigger": run.trigger,
        "triggered_by_id": run.triggered_by_id,
        "schedule_id": run.schedule_id,
        "check_mode": run.check_mode,
        "target_count": run.target_count,
    }
    if final:
        failed = list(
            JobRunStep.objects.filter(run=run, status__in=[StepStatus.FAILED, StepStatus.TIMED_OUT])
            .values_list("target_name", flat=True).distinct().order_by("target_name")[:20]
        )
        payload.update(
            duration_seconds=run.duration_seconds, failed_targets=failed, failed_target_count=run.failed_target_count,
            first_error_lines=_first_error_lines(run), error=run.error[:1000], counts=run.counts,
        )
        notify = _notify_block(run, payload)
        if notify:
            payload["notify"] = notify
    return payload


def _notify_block(run: JobRun, payload: dict) -> dict | None:
    conf = {**DEFAULT_NOTIFY, **(run.version.notify or {})}
    ok = run.status == RunStatus.SUCCEEDED
    on = conf["on"]
    wanted = on == NotifyOn.ALWAYS or (on == NotifyOn.FAILURE and not ok and run.status != RunStatus.CANCELLED) or (on == NotifyOn.SUCCESS and ok)
    if not wanted or run.check_mode:
        return None
    user_ids = list(conf.get("user_ids") or [])
    if run.triggered_by_id and run.triggered_by_id not in user_ids:
        user_ids.append(run.triggered_by_id)
    message = f"{payload['failed_target_count']} of {run.target_count} targets failed.\n{payload['first_error_lines']}" if not ok else f"{run.target_count} targets succeeded."
    return {
        "type": "job_run_succeeded" if ok else "job_run_failed",
        "priority": conf.get("priority") or ("low" if ok else "high"),
        "title": payload["title"],
        "message": message,
        "user_ids": user_ids,
        "roles": conf.get("roles") or [],
        "action_url": payload["url"],
        "action_label": "Open run",
    }


def run_cancel(run: JobRun, *, actor) -> JobRun:
    """Cancel a run: a queued one ends now; a running one stops launching steps, interrupts the
    running ones and marks the rest cancelled (the runner sees the flag within a flush)."""
    if actor is not None and not policy.allows_object(actor, "cancel", run):
        raise PermissionDenied("Your role does not allow cancelling this run.")
    if run.status not in ACTIVE_RUN_STATUSES:
        raise ValidationError(f"Run #{run.pk} already ended ({run.status}).")
    now = timezone.now()
    JobRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=True).update(cancel_requested_at=now)
    if JobRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).exists():
        with transaction.atomic():
            JobRunStep.objects.filter(run=run, status=StepStatus.PENDING).update(status=StepStatus.CANCELLED, error="The run was cancelled before it started.", finished_at=now)
            return _finish(run, status=RunStatus.CANCELLED, error="Cancelled before it started.", counts=None, only_from=(RunStatus.QUEUED,))
    run.refresh_from_db()
    return run


def run_retry_failed(run: JobRun, *, actor) -> JobRun:
    """A new run of the same version and parameters on the targets that failed in `run`."""
    if run.status in ACTIVE_RUN_STATUSES:
        raise ValidationError("The run is still going; retry it when it has ended.")
    target_ids = set(
        JobRunStep.objects.filter(run=run, target__isnull=False)
        .filter(Q(status__in=[StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED]))
        .values_list("target_id", flat=True)
    )
    if not target_ids:
        raise ValidationError("No target failed in this run.")
    targets = list(Target.objects.filter(pk__in=target_ids))
    return job_run_create(run.job, actor=actor, params=run.params, targets=targets, groups=[], trigger=Trigger.RETRY, retry_of=run, version=run.version)


def runs_reap(*, now=None) -> dict:
    """Beat: fail runs whose worker died, re-enqueue queued runs whose task was lost. No run stays
    running forever.

    A run is reaped when its heartbeat (refreshed at every flush, ≤ TARGETS_FLUSH_SECONDS) is older
    than TARGETS_REAP_GONE_SECONDS and the Celery worker that took it does not answer a ping — a
    killed worker's run ends within a reaper period — or, whatever the ping says, older than
    TARGETS_REAP_AFTER_SECONDS. Steps keep what they recorded: finished ones stay as they
    ended, a running one fails as lost (its outcome on the host is unknown), pending ones are
    skipped."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.TARGETS_REAP_AFTER_SECONDS)
    quiet = now - timedelta(seconds=min(settings.TARGETS_REAP_GONE_SECONDS, settings.TARGETS_REAP_AFTER_SECONDS))
    candidates = list(
        JobRun.objects.filter(status=RunStatus.RUNNING)
        .filter(Q(heartbeat_at__lt=quiet) | Q(heartbeat_at__isnull=True, started_at__lt=quiet)).select_related("job", "version")
    )
    alive = _live_workers({run.worker for run in candidates if (run.heartbeat_at or run.started_at) >= stale})
    reaped = 0
    for run in candidates:
        last = run.heartbeat_at or run.started_at
        if last >= stale and (alive is None or run.worker in alive or "@" not in run.worker):
            continue  # quiet, but its worker answers (or cannot be asked): wait for the heartbeat limit
        why = "and does not answer (killed or lost)" if last >= stale else f"(killed or lost) over {settings.TARGETS_REAP_AFTER_SECONDS} s ago"
        reason = (
            f"The worker running this job ({run.worker or 'unknown'}) stopped sending heartbeats at {last:%Y-%m-%d %H:%M:%S %Z} "
            f"{why}; marked failed by the reaper."
        )
        with transaction.atomic():
            JobRunStep.objects.filter(run=run, status=StepStatus.RUNNING).update(
                status=StepStatus.FAILED, error="The worker was lost while this step was running; its outcome on the host is unknown.",
                finished_at=now,
            )
            JobRunStep.objects.filter(run=run, status=StepStatus.PENDING).update(
                status=StepStatus.SKIPPED, error="Not run: the worker was lost.", finished_at=now,
            )
            before = run.status
            run = _finish(run, status=RunStatus.FAILED, error=reason, counts=None)
            reaped += before != run.status
    requeued = 0
    for run_id in JobRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=stale, cancel_requested_at__isnull=True).values_list("pk", flat=True):
        _enqueue(run_id)
        requeued += 1
    return {"reaped": reaped, "requeued": requeued}


def _live_workers(names: set[str]) -> set[str] | None:
    """Which of these Celery nodes answer a ping (1 s); None when the broker cannot be asked."""
    from config.celery import app

    names = {n for n in names if "@" in n}
    if not names:
        return set()
    try:
        replies = app.control.ping(destination=sorted(names), timeout=1.0) or []
    except Exception as exc:
        log.warning("reaper: cannot ping workers %s: %r", sorted(names), exc)
        return None
    return {name for reply in replies for name in reply}


def executor_status(*, actor) -> dict:
    """Queue length of `jobs`, live workers, and the runs running within the caller's reach."""
    from config.celery import app

    queue_length = None
    try:
        with app.connection_for_read() as conn:
            queue_length = conn.default_channel.client.llen("jobs") if hasattr(conn.default_channel, "client") else None
    except Exception:
        queue_length = None
    workers: list[str] = []
    try:
        replies = app.control.ping(timeout=0.5) or []
        workers = sorted(name for reply in replies for name in reply)
    except Exception:
        pass
    visible = JobRun.objects.visible_to(actor)
    return {
        "queue": "jobs",
        "queue_length": queue_length,
        "workers": workers,
        "running_runs": visible.filter(status=RunStatus.RUNNING).count(),
        "queued_runs": visible.filter(status=RunStatus.QUEUED).count(),
    }


def failed_task_record(*, task_name: str, task_id: str, args, kwargs, exc: BaseException, traceback_text: str) -> FailedTask:
    """Dead-letter one task that failed for good (called by the base task's `on_failure`)."""
    return FailedTask.objects.create(
        task_name=task_name, task_id=task_id or "", args=list(args or []), kwargs=dict(kwargs or {}),
        exception=repr(exc)[:4000], traceback=(traceback_text or "")[:20000],
    )


def failed_task_retry(*, actor, ids) -> int:
    """Re-send dead-lettered tasks (admin action)."""
    from celery import current_app

    if actor is not None and not policy.allows(actor, "change", FailedTask):
        raise PermissionDenied("Only platform admins retry failed tasks.")
    count = 0
    for row in FailedTask.objects.filter(pk__in=list(ids)):
        current_app.send_task(row.task_name, args=row.args, kwargs=row.kwargs)  # the routing table picks the queue
        FailedTask.objects.filter(pk=row.pk).update(retried_at=timezone.now(), retry_count=row.retry_count + 1)
        count += 1
    return count
