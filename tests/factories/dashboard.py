"""Rows that feed the dashboard: tickets with SLA outcomes, job runs, check results, alerts."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.monitoring.models import CheckResult
from apps.targets.models import JobRun
from apps.tickets.choices import TicketPriority, TicketStatus
from tests.factories.monitoring import EndpointFactory
from tests.factories.targets import make_job
from tests.factories.tickets import TicketFactory


def sla_tickets(tenant, *, at, total: int, breached: int, **extra):
    """`total` tickets created at `at` with an SLA, `breached` of them breached."""
    rows = []
    for i in range(total):
        is_breached = i < breached
        rows.append(TicketFactory(
            tenant=tenant, created_at=at, resolution_due_at=at + timedelta(hours=8),
            resolution_breached=is_breached, sla_breached_at=(at + timedelta(hours=8)) if is_breached else None,
            status=TicketStatus.RESOLVED, **extra,
        ))
    return rows


def open_critical(tenant, n: int, **extra):
    return [TicketFactory(tenant=tenant, priority=TicketPriority.CRITICAL, status=TicketStatus.OPEN, **extra) for _ in range(n)]


def job_runs(tenant, *, at, ok: int, failed: int, seconds: float = 30.0):
    job = make_job(tenant, name=f"job-{tenant.slug}-{at:%Y%m%d%H%M%S%f}")
    runs = []
    for i in range(ok + failed):
        runs.append(JobRun(
            tenant=tenant, job=job, version=job.current_version, created_at=at, status="succeeded" if i < ok else "failed",
            started_at=at, finished_at=at + timedelta(seconds=seconds),
        ))
    return JobRun.objects.bulk_create(runs)


def checks(tenant, *, at, up: int, down: int):
    endpoint = EndpointFactory(tenant=tenant)
    rows = [CheckResult(endpoint=endpoint, checked_at=at, status="up" if i < up else "down", latency_ms=12.0) for i in range(up + down)]
    return CheckResult.objects.bulk_create(rows)


def now():
    return timezone.now()
