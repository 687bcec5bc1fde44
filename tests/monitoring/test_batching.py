"""The batched check path against real loopback servers: per-endpoint outcomes in one batch, one
event per state change, a hanging endpoint holding back nobody else, racing dispatch ticks and
redelivered batches checking a slot once, one concurrency bound and one keep-alive pool per
process, and the claim spreading endpoints over their interval."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.models import Event
from apps.monitoring.checking import next_slot, phase_ms
from apps.monitoring.choices import EndpointStatus, ResultStatus
from apps.monitoring.models import CheckResult, Endpoint
from apps.monitoring.services import checks_claim_due, checks_run_batch, endpoint_create, endpoint_update
from tests.conftest import wait_for
from tests.factories import OrganizationFactory

from .servers import free_port


def _tenant(slug):
    return OrganizationFactory(slug=slug, kind="tenant")


def _make(tenant, port, name, **kw):
    fields = dict(kind="http", host="127.0.0.1", port=port, interval_seconds=60, timeout_seconds=5,
                  failure_threshold=1, degraded_threshold=1, expected_response_ms=5000)
    fields.update(kw)
    return endpoint_create(actor=None, tenant_id=tenant.pk, name=name, **fields)


def _events(endpoint):
    return list(Event.objects.filter(payload__id=endpoint.pk, name__startswith="endpoint.").order_by("created_at").values_list("name", flat=True))


def _in_thread(fn, *args, **kwargs):
    def run():
        try:
            fn(*args, **kwargs)
        finally:
            connection.close()  # this thread's connection, so the test database can be flushed

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db
def test_one_batch_records_each_endpoint_and_publishes_one_event_per_change(http_server):
    tenant = _tenant("mon-batch")
    port = http_server.port
    up = _make(tenant, port, "up", path="/")
    down = _make(tenant, port, "down", path="/status/503")
    slow = _make(tenant, port, "slow", path="/slow/300", expected_response_ms=100)
    hangs = _make(tenant, port, "hangs", path="/hang", timeout_seconds=0.5)
    refused = _make(tenant, free_port(), "refused")
    everyone = [up, down, slow, hangs, refused]
    try:
        results = checks_run_batch(endpoint_ids=[e.pk for e in everyone])
    finally:
        http_server.behaviour.release.set()
    assert sorted(r.status for r in results) == sorted([ResultStatus.UP, ResultStatus.DOWN, ResultStatus.SLOW, ResultStatus.DOWN, ResultStatus.DOWN])
    status = dict(Endpoint.objects.filter(pk__in=[e.pk for e in everyone]).values_list("name", "status"))
    assert status == {"up": "up", "down": "down", "slow": "degraded", "hangs": "down", "refused": "down"}
    reasons = dict(Endpoint.objects.filter(pk__in=[e.pk for e in everyone]).values_list("name", "last_error"))
    assert reasons["down"] == "HTTP 503, expected 200" and reasons["hangs"] == "timed out after 0.5s"
    assert reasons["refused"].startswith("cannot connect to 127.0.0.1:")
    assert _events(up) == [] and _events(down) == ["endpoint.down"] and _events(slow) == ["endpoint.degraded"]
    assert _events(hangs) == ["endpoint.down"] and _events(refused) == ["endpoint.down"]

    # the same outcomes again: nothing changed, nothing published
    http_server.behaviour.release.clear()
    try:
        checks_run_batch(endpoint_ids=[e.pk for e in everyone])
    finally:
        http_server.behaviour.release.set()
    assert Event.objects.filter(name__startswith="endpoint.").count() == 4
    assert CheckResult.objects.filter(endpoint__in=everyone).count() == 10

    # one recovers: exactly one up event, for it alone
    down.refresh_from_db()
    endpoint_update(down, actor=None, path="/")
    checks_run_batch(endpoint_ids=[up.pk, down.pk, slow.pk])
    assert _events(down) == ["endpoint.down", "endpoint.up"]
    assert Event.objects.filter(name="endpoint.up").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_hanging_endpoint_holds_back_only_its_own_result(http_server):
    tenant = _tenant("mon-hang")
    fast = [_make(tenant, http_server.port, f"fast{i}", path=f"/f{i}").pk for i in range(5)]
    hanging = _make(tenant, http_server.port, "hanging", path="/hang", timeout_seconds=50).pk
    thread = _in_thread(checks_run_batch, endpoint_ids=[*fast, hanging])
    try:
        # the fast ones are stored while the hanging one is still waiting for its answer
        wait_for(lambda: CheckResult.objects.filter(endpoint_id__in=fast).count() == 5, timeout=30)
        assert not CheckResult.objects.filter(endpoint_id=hanging).exists()
        assert set(Endpoint.objects.filter(pk__in=fast).values_list("status", flat=True)) == {"up"}
    finally:
        http_server.behaviour.release.set()
        thread.join(60)
    assert CheckResult.objects.get(endpoint_id=hanging).status == ResultStatus.UP


@pytest.mark.django_db(transaction=True)
def test_racing_dispatch_ticks_and_a_redelivered_batch_check_each_slot_once(http_server):
    tenant = _tenant("mon-race")
    ids = [_make(tenant, http_server.port, f"r{i}", path=f"/r{i}").pk for i in range(40)]
    barrier = threading.Barrier(2)
    claimed = []

    def tick():
        barrier.wait()
        mine = checks_claim_due()
        claimed.append(mine)
        checks_run_batch(endpoint_ids=[c[0] for c in mine], scheduled={c[0]: c[2] for c in mine})

    for thread in [_in_thread(tick), _in_thread(tick)]:
        thread.join(60)
    assert sorted(c[0] for batch in claimed for c in batch) == sorted(ids)
    assert all(http_server.behaviour.requests[f"/r{i}"] == 1 for i in range(40)), http_server.behaviour.requests
    assert CheckResult.objects.filter(endpoint_id__in=ids).count() == 40

    # the broker hands a finished batch out again (worker lost before the ack): nothing is checked twice
    for batch in claimed:
        checks_run_batch(endpoint_ids=[c[0] for c in batch], scheduled={c[0]: c[2] for c in batch})
    assert sum(http_server.behaviour.requests.values()) == 40
    assert CheckResult.objects.filter(endpoint_id__in=ids).count() == 40


@pytest.mark.django_db(transaction=True)
def test_one_concurrency_bound_and_keep_alive_pool_for_every_batch_of_the_process(http_server, settings):
    settings.MONITORING_CONCURRENCY = 3
    tenant = _tenant("mon-bound")
    ids = [_make(tenant, http_server.port, f"b{i}", path=f"/slow/200/b{i}").pk for i in range(12)]
    threads = [_in_thread(checks_run_batch, endpoint_ids=ids[:6]), _in_thread(checks_run_batch, endpoint_ids=ids[6:])]
    for thread in threads:
        thread.join(60)
    checks_run_batch(endpoint_ids=ids[:3])  # a later batch reuses the open connections
    behaviour = http_server.behaviour
    assert sum(behaviour.requests.values()) == 15
    assert 1 <= behaviour.max_in_flight <= 3, behaviour.max_in_flight  # two batches at once, one bound
    assert behaviour.connections < 15, behaviour.connections  # connections are reused across batches
    assert CheckResult.objects.filter(endpoint_id__in=ids, status=ResultStatus.UP).count() == 15


@pytest.mark.django_db
def test_the_claim_spreads_endpoints_over_their_interval_and_keeps_each_on_its_slot(http_server):
    tenant = _tenant("mon-spread")
    now = timezone.now()
    Endpoint.objects.bulk_create([
        Endpoint(tenant=tenant, name=f"s{i}", kind="http", host="127.0.0.1", port=http_server.port, interval_seconds=60,
                 timeout_seconds=5, next_check_at=now)
        for i in range(300)
    ])
    claimed = checks_claim_due(now=now)
    assert len(claimed) == 300
    nxt = dict(Endpoint.objects.filter(tenant=tenant).values_list("pk", "next_check_at"))
    gaps = [(nxt[pk] - now).total_seconds() for pk, _, _ in claimed]
    assert all(60 <= g < 120 for g in gaps), (min(gaps), max(gaps))  # never sooner than one interval
    assert len({int(g) for g in gaps}) >= 50  # not all in the same second: spread over the minute
    for pk, at in nxt.items():
        assert round(at.timestamp() * 1000) % 60000 == phase_ms(pk, 60)
        assert at == next_slot(pk, 60, now, now)  # the SQL and the Python fallback agree
    # at its slot, each moves exactly one interval: drift-free on its own grid
    later = max(nxt.values())
    for pk, _, scheduled in checks_claim_due(now=later):
        assert scheduled == nxt[pk]
    moved = dict(Endpoint.objects.filter(tenant=tenant).values_list("pk", "next_check_at"))
    assert all(moved[pk] == nxt[pk] + timedelta(seconds=60) for pk in nxt)
    assert EndpointStatus.UNKNOWN in set(Endpoint.objects.filter(tenant=tenant).values_list("status", flat=True))
