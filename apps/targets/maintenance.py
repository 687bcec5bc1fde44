"""Maintenance tasks targets contributes to apps.maintenance's registry: job output chunks of
old runs (`TARGETS_OUTPUT_RETENTION_DAYS`) and whole old runs with their steps
(`TARGETS_RUN_RETENTION_DAYS`), deleted in batches; 0 keeps them forever. Only finished runs are
touched; a run another row still protects (e.g. a deployment operation) is kept."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.maintenance.registry import TaskContext, TaskOutcome, register
from apps.maintenance.services import purge_in_batches


def _cutoff(ctx: TaskContext, setting: str):
    days = int(ctx.params.get("days", getattr(settings, setting)))
    return None if days <= 0 else timezone.now() - timedelta(days=days)


def _finished_before(cutoff):
    from .models import JobRun

    return JobRun.objects.filter(finished_at__isnull=False, finished_at__lt=cutoff)


def _unprotected(queryset):
    """Leave out rows that another model references with PROTECT/RESTRICT (deleting them would fail)."""
    for rel in queryset.model._meta.related_objects:
        if rel.on_delete in (models.PROTECT, models.RESTRICT):
            queryset = queryset.exclude(pk__in=rel.related_model._base_manager.filter(
                **{f"{rel.field.name}__isnull": False}).values(rel.field.name))
    return queryset


@register("purge_job_output", crontab="35 3 * * *",
          description="Delete the output chunks of job runs finished more than TARGETS_OUTPUT_RETENTION_DAYS ago "
                      "(steps keep their capped stdout/stderr).")
def purge_job_output(ctx: TaskContext):
    from .models import JobRunOutput

    cutoff = _cutoff(ctx, "TARGETS_OUTPUT_RETENTION_DAYS")
    if cutoff is None:
        return TaskOutcome(details={"message": "TARGETS_OUTPUT_RETENTION_DAYS is 0: output is kept."})
    return purge_in_batches(JobRunOutput.objects.filter(run__in=_finished_before(cutoff).values("pk")), ctx=ctx)


@register("purge_job_runs", crontab="40 3 * * *",
          description="Delete job runs (with steps and output) finished more than TARGETS_RUN_RETENTION_DAYS ago, "
                      "and dead-letter entries as old.")
def purge_job_runs(ctx: TaskContext):
    from .models import FailedTask, JobRunOutput, JobRunStep

    cutoff = _cutoff(ctx, "TARGETS_RUN_RETENTION_DAYS")
    if cutoff is None:
        return TaskOutcome(details={"message": "TARGETS_RUN_RETENTION_DAYS is 0: runs are kept."})
    runs = _unprotected(_finished_before(cutoff))
    run_ids = runs.values("pk")
    # Children first in their own batches: a run's cascade would otherwise delete thousands of
    # steps and chunks in one transaction.
    removed = purge_in_batches(JobRunOutput.objects.filter(run__in=run_ids), ctx=ctx)
    removed.update(purge_in_batches(JobRunStep.objects.filter(run__in=run_ids), ctx=ctx))
    removed.update(purge_in_batches(runs, ctx=ctx))
    removed.update(purge_in_batches(FailedTask.objects.filter(created_at__lt=cutoff), ctx=ctx))
    return removed
