"""The dispatcher on a real Celery worker: beat's task claims due endpoints, batches are
checked on the worker against a loopback HTTP server, results land in the database."""

import pytest

from apps.monitoring.models import CheckResult, Endpoint
from apps.monitoring.tasks import dispatch_due_checks_task
from tests.conftest import wait_for
from tests.factories import OrganizationFactory


@pytest.mark.django_db(transaction=True)
def test_dispatcher_on_real_worker(celery_worker, http_server, settings):
    settings.MONITORING_BATCH_SIZE = 3
    tenant = OrganizationFactory(slug="mon-worker", kind="tenant")
    from apps.monitoring.services import endpoint_create

    ids = [endpoint_create(actor=None, tenant_id=tenant.pk, name=f"w{i}", kind="http", host="127.0.0.1",
                           port=http_server.port, interval_seconds=60, timeout_seconds=2).pk for i in range(7)]
    dispatch_due_checks_task.delay()  # 7 due → 3 batches of ≤ 3 on the worker
    wait_for(lambda: CheckResult.objects.filter(endpoint_id__in=ids).count() == 7, timeout=20)
    assert set(Endpoint.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"up"}
