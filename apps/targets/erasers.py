"""The targets app's eraser (docs/customers.md, "What erasure does per table")."""

from __future__ import annotations

from django_celery_beat.models import PeriodicTask

from apps.tenants.customers.erasure import PersonalData, scrub_tables
from apps.tenants.customers.registry import register_eraser

from .models import Credential, FailedTask, Job, JobRun, JobRunOutput, JobRunStep, JobSchedule, Target, TargetGroup


@register_eraser("targets")
def erase(customer, *, request, personal: PersonalData) -> dict:
    """Job runs keep their rows (status, timings, counts) with the customer's identifiers
    redacted from parameters, rendered commands, output and errors; the same for schedules'
    parameters (and their beat entries' descriptions), the names and tags of targets, groups,
    credentials and jobs (with the history of targets and credentials) and the dead-letter list."""
    mine = {"tenant_id": customer.tenant_id}
    through_run = {"run__tenant_id": customer.tenant_id}
    return scrub_tables(personal, {
        "runs": (JobRun.objects.filter(**mine), ["params", "error"]),
        "steps": (JobRunStep.objects.filter(**through_run), ["target_name", "rendered", "stdout", "stderr", "error"]),
        "output": (JobRunOutput.objects.filter(**through_run), ["data"]),
        "schedules": (JobSchedule.objects.filter(**mine), ["name", "params", "last_error"]),
        "targets": (Target.objects.filter(**mine), ["name", "tags", "last_test_message"]),
        "groups": (TargetGroup.objects.filter(**mine), ["name", "description"]),
        "credentials": (Credential.objects.filter(**mine), ["name", "username", "description"]),
        "jobs": (Job.objects.filter(**mine), ["name"]),
        "failed_tasks": (FailedTask.objects.all(), ["args", "kwargs", "exception", "traceback"]),
        # each schedule's beat entry repeats the job's and the schedule's names
        "periodic_tasks": (PeriodicTask.objects.filter(pk__in=JobSchedule.objects.filter(**mine).values("periodic_task_id")), ["name", "description"]),
    }, history={"targets": mine, "credentials": mine})
