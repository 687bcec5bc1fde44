"""Maintenance tasks monitoring contributes to apps.maintenance's registry."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.maintenance.registry import TaskContext, register
from apps.maintenance.services import purge_in_batches


@register("purge_check_results", crontab="15 3 * * *",
          description="Delete check results older than MONITORING_RESULT_RETENTION_DAYS, in batches.")
def purge_check_results(ctx: TaskContext):
    from .models import CheckResult

    days = int(ctx.params.get("days", settings.MONITORING_RESULT_RETENTION_DAYS))
    cutoff = timezone.now() - timedelta(days=days)
    return purge_in_batches(CheckResult.objects.filter(checked_at__lt=cutoff), ctx=ctx)
