"""Job runs and steps by status (runs created in the last WINDOW_HOURS), for /metrics."""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from apps.core.metrics import WINDOW_HOURS, gauge

from .models import JobRun, JobRunStep


@gauge("job_runs", f"Job runs created in the last {WINDOW_HOURS} h, by status.", ["status"])
def job_runs():
    since = timezone.now() - timedelta(hours=WINDOW_HOURS)
    rows = JobRun.objects.filter(created_at__gte=since).order_by().values_list("status").annotate(n=Count("id"))
    return {(status,): n for status, n in rows}


@gauge("job_run_steps", f"Steps (target x step) of job runs created in the last {WINDOW_HOURS} h, by status.", ["status"])
def job_run_steps():
    since = timezone.now() - timedelta(hours=WINDOW_HOURS)
    rows = JobRunStep.objects.filter(run__created_at__gte=since).order_by().values_list("status").annotate(n=Count("id"))
    return {(status,): n for status, n in rows}
