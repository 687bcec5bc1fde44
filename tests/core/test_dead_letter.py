"""Dead-letter: a portal task that fails for good (a permanent error, or transient ones until its
retries are exhausted) leaves a `FailedTask` row, written by the base task in a real worker even
when the failure broke the task's database connection."""

from __future__ import annotations

import pytest
from celery import shared_task
from django.db import connection

from apps.core.tasks import PortalTask
from config.celery import app
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@shared_task(base=PortalTask, name="tests.core.drop_own_connection", max_retries=2, retry_backoff=False, default_retry_delay=0)
def drop_own_connection_task(marker: str) -> None:
    """Every attempt loses its database connection (as a PostgreSQL restart or failover does)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def test_permanent_failure_of_a_real_task_is_dead_lettered(celery_worker):
    from apps.targets.models import FailedTask

    app.send_task("core.dispatch_event", args=["not-a-uuid"])
    row = wait_for(lambda: FailedTask.objects.filter(task_name="core.dispatch_event").first(), timeout=20)
    assert row.args == ["not-a-uuid"]
    assert "ValidationError" in row.exception
    assert "Traceback" in row.traceback
    assert row.task_id


def test_transient_failures_exhausting_retries_are_dead_lettered_after_the_last_attempt(celery_worker):
    from apps.targets.models import FailedTask

    drop_own_connection_task.delay("m1")
    row = wait_for(lambda: FailedTask.objects.filter(task_name="tests.core.drop_own_connection").first(), timeout=30)
    assert row.args == ["m1"]
    assert "OperationalError" in row.exception, row.exception
    # One row for the task, written after the last retry (not one per attempt).
    assert FailedTask.objects.filter(task_name="tests.core.drop_own_connection").count() == 1
