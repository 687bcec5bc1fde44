"""A channel that is disabled, failing or hanging, against a real loopback HTTP server:
disabling suppresses its pending deliveries at once (and a send-time guard catches the rest);
consecutive failures open a circuit breaker that defers deliveries (never drops them) until a
half-open probe succeeds; each channel has a time budget per task, so a hanging endpoint holds a
worker slot for seconds, not minutes, and event dispatch is not starved behind it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from apps.notifications import services
from apps.notifications.choices import DeliveryStatus, SuppressReason
from apps.notifications.models import ChannelConfig, Delivery
from tests.conftest import wait_for
from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory


class Endpoint:
    """A loopback HTTP endpoint per path: mode "ok" (200), "fail" (500) or "hang" (no answer for
    `hang_seconds`)."""

    def __init__(self):
        self.modes: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.hang_seconds = 30.0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint.lock:
                    endpoint.hits[self.path] = endpoint.hits.get(self.path, 0) + 1
                    mode = endpoint.modes.get(self.path, "ok")
                if mode == "hang":
                    time.sleep(endpoint.hang_seconds)
                status = 500 if mode == "fail" else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"no" if status == 500 else b"ok")
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.stop()


def channel_with_deliveries(world, endpoint, path, n, *, mode="ok", name=None, **delivery):
    endpoint.modes[path] = mode
    channel = ChannelConfigFactory(tenant=world.tenant("a"), name=name or path.strip("/"), plain_url=endpoint.url + path)
    rows = [DeliveryFactory(notification=NotificationFactory(tenant=world.tenant("a")), kind="webhook", channel=channel, recipient=None, **delivery)
            for _ in range(n)]
    return channel, rows


def statuses(channel):
    return sorted(Delivery.objects.filter(channel=channel).values_list("status", flat=True))


# -- disabling ---------------------------------------------------------------------------------
def test_disabling_a_channel_suppresses_its_pending_deliveries_at_once(world, endpoint):
    channel, rows = channel_with_deliveries(world, endpoint, "/off", 30)
    Delivery.objects.filter(pk__in=[r.pk for r in rows[:10]]).update(attempts=3, last_error="HTTP 500")  # retrying ones
    Delivery.objects.filter(pk__in=[r.pk for r in rows[10:12]]).update(status=DeliveryStatus.BATCHED)  # waiting for a digest
    Delivery.objects.filter(pk=rows[12].pk).update(status=DeliveryStatus.SENT)  # history stays history
    other, others = channel_with_deliveries(world, endpoint, "/on", 3)

    services.channel_save(channel, actor=world.user("a", "admin"), enabled=False)

    suppressed = Delivery.objects.filter(channel=channel, status=DeliveryStatus.SUPPRESSED)
    assert suppressed.count() == 29
    assert set(suppressed.values_list("reason", flat=True)) == {SuppressReason.CHANNEL_DISABLED}
    assert Delivery.objects.get(pk=rows[12].pk).status == DeliveryStatus.SENT
    assert statuses(other) == [DeliveryStatus.PENDING] * 3
    assert services.deliveries_send(delivery_ids=[r.pk for r in rows]) == {"sent": 0, "failed": 0, "retry": 0}
    assert endpoint.hits.get("/off", 0) == 0


def test_a_delivery_of_a_channel_disabled_behind_the_services_back_is_suppressed_at_send_time(world, endpoint):
    channel, rows = channel_with_deliveries(world, endpoint, "/raw", 3)
    ChannelConfig.objects.filter(pk=channel.pk).update(enabled=False)  # e.g. a bulk admin edit or a SQL fix
    result = services.deliveries_send(delivery_ids=[r.pk for r in rows])
    assert result == {"sent": 0, "failed": 0, "retry": 0, "suppressed": 3}
    assert endpoint.hits.get("/raw", 0) == 0
    assert set(Delivery.objects.filter(channel=channel).values_list("status", "reason")) == {(DeliveryStatus.SUPPRESSED, SuppressReason.CHANNEL_DISABLED)}


# -- circuit breaker ---------------------------------------------------------------------------
@pytest.fixture
def breaker(settings):
    settings.NOTIFICATIONS_BREAKER_FAILURES = 5
    settings.NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS = 1
    return settings


def test_consecutive_failures_open_the_breaker_and_defer_the_rest(world, endpoint, breaker, api):
    breaker.NOTIFICATIONS_BREAKER_COOLDOWN_SECONDS = 3600
    channel, rows = channel_with_deliveries(world, endpoint, "/down", 20, mode="fail")
    services.deliveries_send(delivery_ids=[r.pk for r in rows])
    assert endpoint.hits["/down"] == 5, "the breaker should stop sending after 5 failures in a row"
    channel.refresh_from_db()
    assert channel.circuit_open_until and channel.circuit_open_until > timezone.now() - timedelta(seconds=1)
    tried = Delivery.objects.filter(channel=channel, attempts=1)
    deferred = Delivery.objects.filter(channel=channel, attempts=0)
    assert tried.count() == 5 and set(tried.values_list("status", flat=True)) == {DeliveryStatus.PENDING}  # retried later
    assert deferred.count() == 15 and set(deferred.values_list("status", flat=True)) == {DeliveryStatus.PENDING}  # not lost
    assert all(d >= channel.circuit_open_until for d in deferred.values_list("next_attempt_at", flat=True))
    assert "circuit" in deferred.first().last_error
    body = api.as_user(world.user("a", "admin")).get(f"/api/v1/notifications/channels/{channel.pk}/").json()
    assert body["consecutive_failures"] == 5 and body["circuit_open_until"], body  # integrators see the open breaker

    # While open: nothing is sent, even for rows whose own retry is due.
    services.deliveries_send(delivery_ids=[r.pk for r in rows], now=timezone.now() + timedelta(minutes=10))
    assert endpoint.hits["/down"] == 5


def test_half_open_probe_failure_reopens_and_success_closes_and_releases(world, endpoint, breaker):
    channel, rows = channel_with_deliveries(world, endpoint, "/flaky", 12, mode="fail")
    ids = [r.pk for r in rows]
    services.deliveries_send(delivery_ids=ids)
    assert endpoint.hits["/flaky"] == 5
    time.sleep(1.2)  # the cool-down passes: half-open

    services.deliveries_send(delivery_ids=ids, now=timezone.now() + timedelta(hours=2))
    assert endpoint.hits["/flaky"] == 6, "half-open sends exactly one probe"
    channel.refresh_from_db()
    assert channel.circuit_open_until > timezone.now(), "a failed probe opens the breaker again"
    time.sleep(1.2)

    endpoint.modes["/flaky"] = "ok"  # the endpoint recovers
    services.deliveries_send(delivery_ids=ids, now=timezone.now() + timedelta(hours=2))
    channel.refresh_from_db()
    assert channel.circuit_open_until is None and channel.consecutive_failures == 0
    # The probe succeeded: the deferred rows were released and sent (tasks run eagerly here).
    wait_for(lambda: Delivery.objects.filter(channel=channel, status=DeliveryStatus.SENT).count() == 12, timeout=10)
    assert endpoint.hits["/flaky"] == 6 + 12


# -- time budget -------------------------------------------------------------------------------
def test_a_hanging_endpoint_is_bounded_by_its_budget_and_healthy_channels_still_send(world, endpoint, settings):
    settings.NOTIFICATIONS_CHANNEL_BUDGET_SECONDS = 1
    hanging, slow_rows = channel_with_deliveries(world, endpoint, "/hang", 10, mode="hang")
    healthy, ok_rows = channel_with_deliveries(world, endpoint, "/fine", 5)
    started = time.monotonic()
    result = services.deliveries_send(delivery_ids=[r.pk for r in slow_rows + ok_rows])
    elapsed = time.monotonic() - started
    assert elapsed < 4, f"one batch held its worker for {elapsed:.1f} s"
    assert statuses(healthy) == [DeliveryStatus.SENT] * 5
    assert endpoint.hits["/hang"] == 1, "after its budget, nothing more is tried on the hanging channel"
    assert statuses(hanging) == [DeliveryStatus.PENDING] * 10  # one to retry, nine deferred: none lost
    assert result["sent"] == 5
    print(f"\nBREAKER hanging endpoint: batch of 15 took {elapsed:.2f} s (budget 1 s)")


@pytest.mark.django_db(transaction=True)
def test_hanging_chat_channels_do_not_starve_event_dispatch(celery_worker, endpoint, settings):
    """Three hanging channels with a burst of deliveries on a worker of two slots (the fixture
    consumes every queue, like the only worker of a small install): an event still dispatches
    within seconds."""
    from apps.core.choices import EventStatus
    from apps.core.events import publish
    from apps.core.models import Event
    from tests.world import build_world

    settings.NOTIFICATIONS_CHANNEL_BUDGET_SECONDS = 2
    world = build_world()
    ids = []
    for i in range(3):
        _, rows = channel_with_deliveries(world, endpoint, f"/chat{i}", 50, mode="hang")
        ids += [r.pk for r in rows]
    services.enqueue_deliveries(ids)
    wait_for(lambda: sum(endpoint.hits.values()) >= 2, timeout=10)  # both slots are now busy with deliveries
    started = time.monotonic()
    event = publish("test.starvation_probe", tenant=world.tenant("a"))
    wait_for(lambda: Event.objects.get(pk=event.pk).status == EventStatus.DISPATCHED, timeout=12)
    waited = time.monotonic() - started
    print(f"\nBREAKER starvation: event dispatched {waited:.1f} s after publish behind 3 hanging channels × 50 deliveries")
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() + Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 150
