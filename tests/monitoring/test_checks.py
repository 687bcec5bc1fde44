"""Checks against real loopback servers: up, slow → degraded, down, recovering; TCP; JSON/keyword
matching; events published; maintenance windows silence down/degraded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Event
from apps.maintenance.services import window_create
from apps.monitoring.choices import EndpointStatus, ResultStatus
from apps.monitoring.models import CheckResult, Endpoint
from apps.monitoring.services import checks_claim_due, checks_run_batch, endpoint_create
from apps.monitoring.tasks import dispatch_due_checks_task

from .servers import free_port

pytestmark = pytest.mark.django_db


def _make(world, port, **kw):
    defaults = dict(name=f"ep-{port}-{kw.get('path', '/')}", kind="http", host="127.0.0.1", port=port, interval_seconds=10,
                    timeout_seconds=2, failure_threshold=2, degraded_threshold=2, expected_response_ms=150)
    defaults.update(kw)
    return endpoint_create(actor=None, tenant_id=world.tenant("a").pk, **defaults)


def _check(endpoint):
    checks_run_batch(endpoint_ids=[endpoint.pk])
    endpoint.refresh_from_db()
    return endpoint


def _events(name):
    return list(Event.objects.filter(name=name).order_by("created_at"))


def test_up_slow_degraded_down_and_recovery_publish_events(world, http_server):
    e = _make(world, http_server.port)
    assert _check(e).status == EndpointStatus.UP
    assert not _events("endpoint.up")  # first success: nothing to recover from

    http_server.behaviour.delay = 0.3
    assert _check(e).status == EndpointStatus.UP  # one slow check is not yet degraded
    assert _check(e).status == EndpointStatus.DEGRADED
    [degraded] = _events("endpoint.degraded")
    assert degraded.payload["object_type"] == "monitoring.endpoint" and degraded.payload["id"] == e.pk
    assert degraded.payload["notify"]["priority"] == "medium"

    http_server.behaviour.delay = 0
    http_server.behaviour.status = 503
    assert _check(e).status == EndpointStatus.DEGRADED  # one failure below the threshold of 2
    down = _check(e)
    assert down.status == EndpointStatus.DOWN and "HTTP 503" in down.status_reason
    [ev] = _events("endpoint.down")
    assert ev.tenant_id == world.tenant("a").pk and ev.payload["notify"]["roles"]

    http_server.behaviour.status = 200
    assert _check(e).status == EndpointStatus.UP
    [up] = _events("endpoint.up")
    assert up.payload["previous_status"] == EndpointStatus.DOWN
    statuses = list(CheckResult.objects.filter(endpoint=e).order_by("checked_at").values_list("status", flat=True))
    assert statuses == ["up", "slow", "slow", "down", "down", "up"]


def test_connection_refused_and_tcp_checks(world, tcp_server):
    closed = _make(world, free_port(), failure_threshold=1)
    assert _check(closed).status == EndpointStatus.DOWN
    # the operator's words, not aiohttp's repr of the socket call (it becomes the alert's title)
    assert closed.last_error == f"cannot connect to 127.0.0.1:{closed.port}: Connection refused", closed.last_error
    tcp = _make(world, tcp_server.port, kind="tcp", name="tcp-ok")
    assert _check(tcp).status == EndpointStatus.UP and tcp.last_latency_ms is not None
    tcp_down = _make(world, free_port(), kind="tcp", name="tcp-down", failure_threshold=1)
    assert _check(tcp_down).status == EndpointStatus.DOWN


def test_keyword_and_json_path_matching(world, http_server):
    kw = _make(world, http_server.port, name="kw", match_kind="keyword", match_keyword="all good", failure_threshold=1)
    assert _check(kw).status == EndpointStatus.UP
    http_server.behaviour.body = b"maintenance page"
    assert _check(kw).status == EndpointStatus.DOWN and "not found" in kw.last_error
    js = _make(world, http_server.port, name="js", path="/json", match_kind="json_path",
               match_json_path="$.data.state", match_json_value="green", failure_threshold=1)
    assert _check(js).status == EndpointStatus.UP
    js2 = _make(world, http_server.port, name="js2", path="/json", match_kind="json_path",
                match_json_path="data.items[0].ok", match_json_value="red", failure_threshold=1)
    assert _check(js2).status == EndpointStatus.DOWN and "expected 'red'" in js2.last_error


def test_timeout_counts_as_failure(world, http_server):
    http_server.behaviour.delay = 1.5
    e = _make(world, http_server.port, timeout_seconds=0.5, failure_threshold=1)
    assert _check(e).status == EndpointStatus.DOWN and "timed out" in e.last_error


def test_maintenance_window_marks_results_and_silences_down_until_it_ends(world, http_server):
    http_server.behaviour.status = 500
    e = _make(world, http_server.port, failure_threshold=1)
    window = window_create(actor=None, tenant_id=e.tenant_id, name="db upgrade", starts_at=timezone.now() - timedelta(minutes=1),
                           ends_at=timezone.now() + timedelta(hours=1), objects=[e])
    assert _check(e).status == EndpointStatus.DOWN
    assert e.in_maintenance and CheckResult.objects.get(endpoint=e).in_maintenance
    assert not _events("endpoint.down")
    # the window ends while the endpoint is still down: the next failing check publishes
    window.ends_at = timezone.now() - timedelta(seconds=1)
    window.save()
    assert _check(e).in_maintenance is False
    assert len(_events("endpoint.down")) == 1


def test_window_for_another_endpoint_does_not_silence(world, http_server):
    http_server.behaviour.status = 500
    e = _make(world, http_server.port, failure_threshold=1, labels={"instance": "web-1"})
    window_create(actor=None, tenant_id=e.tenant_id, name="other", starts_at=timezone.now() - timedelta(minutes=1),
                  ends_at=timezone.now() + timedelta(hours=1), scope="objects", label_matchers={"instance": "db-1"})
    assert _check(e).in_maintenance is False
    assert len(_events("endpoint.down")) == 1


def test_dispatcher_claims_only_due_endpoints_and_moves_them_an_interval_ahead(world, http_server):
    due = _make(world, http_server.port, name="due")
    later = _make(world, http_server.port, name="later")
    Endpoint.objects.filter(pk=later.pk).update(next_check_at=timezone.now() + timedelta(minutes=5))
    paused = _make(world, http_server.port, name="paused", enabled=False)
    before = Endpoint.objects.get(pk=due.pk).next_check_at
    assert dispatch_due_checks_task.delay().get() == 1  # eager in tests: the batch runs inline
    due.refresh_from_db()
    assert due.status == EndpointStatus.UP and due.next_check_at >= before + timedelta(seconds=10)
    assert not CheckResult.objects.filter(endpoint__in=[later, paused]).exists()
    assert CheckResult.objects.get(endpoint=due).scheduled_at == before
    assert checks_claim_due() == []  # nothing due any more


def test_interval_below_minimum_and_bad_host_are_refused(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        _make(world, 80, interval_seconds=5)
    assert "interval_seconds" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _make(world, 80, host="http://x/y")
    assert "host" in exc.value.message_dict


def test_result_statuses_are_choices():
    assert {"up", "slow", "down"} <= set(ResultStatus.values)
