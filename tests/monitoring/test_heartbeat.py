"""Heartbeats like healthchecks.io: ping, early ping, late → down, /fail, /start."""

from datetime import timedelta

import pytest
from django.urls import include, path
from django.utils import timezone

from apps.core.models import Event
from apps.monitoring.choices import EndpointStatus
from apps.monitoring.models import CheckResult, Endpoint
from apps.monitoring.services import endpoint_create
from apps.monitoring.tasks import dispatch_due_checks_task

pytestmark = pytest.mark.django_db

urlpatterns = [path("", include("config.urls")), path("", include("apps.monitoring.urls"))]


@pytest.fixture
def hb(world):
    return endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="nightly backup", kind="heartbeat",
                           interval_seconds=60, grace_seconds=30)


@pytest.mark.urls("tests.monitoring.test_heartbeat")
def test_ping_marks_up_and_sets_deadline(client, hb):
    assert hb.next_check_at is None  # new: not late before its first ping
    assert client.get(f"/ping/{hb.ping_id}").status_code == 200
    hb.refresh_from_db()
    assert hb.status == EndpointStatus.UP
    assert hb.next_check_at == hb.last_ping_at + timedelta(seconds=90)
    assert client.get("/ping/00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.urls("tests.monitoring.test_heartbeat")
def test_early_ping_stays_up_and_moves_deadline(client, hb):
    client.post(f"/ping/{hb.ping_id}")
    hb.refresh_from_db()
    first = hb.next_check_at
    client.post(f"/ping/{hb.ping_id}")  # early: well before the period is over
    hb.refresh_from_db()
    assert hb.status == EndpointStatus.UP and hb.next_check_at > first


def test_late_heartbeat_goes_down_and_publishes(api, hb):
    assert api.get(f"/api/v1/monitoring/ping/{hb.ping_id}").status_code == 200
    Endpoint.objects.filter(pk=hb.pk).update(last_ping_at=timezone.now() - timedelta(seconds=120),
                                             next_check_at=timezone.now() - timedelta(seconds=30))
    dispatch_due_checks_task.delay()
    hb.refresh_from_db()
    assert hb.status == EndpointStatus.DOWN and "no ping since" in hb.status_reason
    assert Event.objects.filter(name="endpoint.down", payload__id=hb.pk).count() == 1
    # the next ping recovers it
    api.get(f"/api/v1/monitoring/ping/{hb.ping_id}")
    hb.refresh_from_db()
    assert hb.status == EndpointStatus.UP and Event.objects.filter(name="endpoint.up").count() == 1


def test_fail_ping_is_down_at_once_and_start_measures_duration(api, hb):
    api.post(f"/api/v1/monitoring/ping/{hb.ping_id}/start")
    api.post(f"/api/v1/monitoring/ping/{hb.ping_id}")
    hb.refresh_from_db()
    ok = CheckResult.objects.filter(endpoint=hb, status="up").get()
    assert ok.latency_ms is not None and hb.status == EndpointStatus.UP
    api.post(f"/api/v1/monitoring/ping/{hb.ping_id}/fail", "disk full", content_type="text/plain")
    hb.refresh_from_db()
    assert hb.status == EndpointStatus.DOWN and "disk full" in hb.last_error
