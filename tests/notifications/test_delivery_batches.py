"""Deliveries sent in batches (one claim per batch, sends on the process's send loop, keep-alive
pools per endpoint) against a real loopback HTTP/1.1 server: each row's outcome is its own, two
tasks racing on the same ids send each row once, connections are reused across batches, sends
run concurrently across channels but in order within one, and a webhook is never rendered."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications import services
from apps.notifications.choices import DeliveryStatus, SuppressReason
from apps.notifications.models import Delivery
from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory, NotificationTemplateFactory


class Receiver:
    """Answers each path with the status given in `statuses` (200 otherwise); counts requests
    per path and TCP connections (one handler instance per connection)."""

    def __init__(self):
        self.statuses: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        self.seen: list[tuple[str, dict, bytes]] = []  # (path, headers, body) in arrival order
        self.delay = 0.0  # seconds each answer waits
        self.in_flight, self.most_in_flight = {}, {}  # per path, and "*" for all
        self.connections = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.hits[self.path] = receiver.hits.get(self.path, 0) + 1
                    receiver.seen.append((self.path, dict(self.headers), body))
                    for key in (self.path, "*"):
                        receiver.in_flight[key] = receiver.in_flight.get(key, 0) + 1
                        receiver.most_in_flight[key] = max(receiver.most_in_flight.get(key, 0), receiver.in_flight[key])
                time.sleep(receiver.delay)
                with receiver.lock:
                    for key in (self.path, "*"):
                        receiver.in_flight[key] -= 1
                status = receiver.statuses.get(self.path, 200)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _rows(world, receiver, path, n, **delivery):
    channel = ChannelConfigFactory(tenant=world.tenant("a"), name=path.strip("/"), plain_url=receiver.url + path, **delivery.pop("channel_kw", {}))
    return [DeliveryFactory(notification=NotificationFactory(tenant=world.tenant("a")), kind="webhook", channel=channel, recipient=None, **delivery)
            for _ in range(n)]


def test_one_batch_keeps_each_deliverys_own_outcome(world, receiver, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 30
    receiver.statuses = {"/busy": 503, "/gone": 410}
    ok = _rows(world, receiver, "/ok", 3)
    busy = _rows(world, receiver, "/busy", 1)
    gone = _rows(world, receiver, "/gone", 1)
    off = _rows(world, receiver, "/off", 1, channel_kw={"enabled": False})
    limited = _rows(world, receiver, "/limited", 1, status=DeliveryStatus.SUPPRESSED, reason=SuppressReason.RATE_LIMIT)
    later = _rows(world, receiver, "/later", 1, next_attempt_at=timezone.now() + timedelta(hours=1))
    ids = [d.pk for d in ok + busy + gone + off + limited + later]

    result = services.deliveries_send(delivery_ids=ids)

    assert result == {"sent": 3, "failed": 1, "retry": 1, "suppressed": 1}
    rows = {d.pk: d for d in Delivery.objects.filter(pk__in=ids)}
    assert {rows[d.pk].status for d in ok} == {DeliveryStatus.SENT} and all(rows[d.pk].sent_at for d in ok)
    retry = rows[busy[0].pk]
    assert (retry.status, retry.attempts) == (DeliveryStatus.PENDING, 1) and "HTTP 503" in retry.last_error
    assert 20 <= (retry.next_attempt_at - timezone.now()).total_seconds() <= 37  # 30 s ± 20 %
    assert (rows[gone[0].pk].status, rows[gone[0].pk].attempts) == (DeliveryStatus.FAILED, 1) and "410" in rows[gone[0].pk].last_error
    assert (rows[off[0].pk].status, rows[off[0].pk].reason, rows[off[0].pk].attempts) == (DeliveryStatus.SUPPRESSED, SuppressReason.CHANNEL_DISABLED, 0)
    assert (rows[limited[0].pk].status, rows[limited[0].pk].reason, rows[limited[0].pk].attempts) == (DeliveryStatus.SUPPRESSED, SuppressReason.RATE_LIMIT, 0)
    assert (rows[later[0].pk].status, rows[later[0].pk].attempts) == (DeliveryStatus.PENDING, 0)
    assert receiver.hits == {"/ok": 3, "/busy": 1, "/gone": 1}


@pytest.mark.django_db(transaction=True)
def test_two_batch_tasks_racing_on_the_same_ids_send_each_row_once(world, receiver):
    rows = _rows(world, receiver, "/shared", 30) + [r for i in range(30) for r in _rows(world, receiver, f"/own/{i}", 1)]
    ids = [d.pk for d in rows]
    start, results = threading.Barrier(2), []

    def task():
        try:
            start.wait()
            results.append(services.deliveries_send(delivery_ids=ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=task) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r["sent"] for r in results) == 60
    assert sum(receiver.hits.values()) == 60 and receiver.hits["/shared"] == 30
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", "attempts")) == {(DeliveryStatus.SENT, 1)}


def test_keep_alive_connections_are_reused_across_batches(world, receiver, settings):
    settings.NOTIFICATIONS_SEND_CONCURRENCY = 4
    rows = [r for i in range(60) for r in _rows(world, receiver, f"/member/{i}", 1)]  # 60 channels, one endpoint
    for i in range(0, 60, 20):
        assert services.deliveries_send(delivery_ids=[d.pk for d in rows[i : i + 20]])["sent"] == 20
    assert sum(receiver.hits.values()) == 60
    assert receiver.connections <= 4  # one pool per endpoint, at most NOTIFICATIONS_SEND_CONCURRENCY connections


def test_a_webhook_is_not_rendered_so_a_broken_template_cannot_fail_it(world, receiver):
    NotificationTemplateFactory(tenant=world.tenant("a"), channel="webhook", body_text="{% if %}broken")
    rows = _rows(world, receiver, "/hook", 2)
    assert services.deliveries_send(delivery_ids=[d.pk for d in rows])["sent"] == 2
    assert receiver.hits == {"/hook": 2}


def test_a_mixed_batch_gets_each_deliverys_exact_outcome(world, receiver, settings, mailoutbox):
    """One batch of every kind of row the send path sorts: webhooks that succeed (personal
    channels, a shared one, a notification that also goes out by e-mail), a 5xx and a 429 (retry
    with backoff), a 410 (failed), a 5xx on the last attempt (failed), an open breaker (deferred,
    its attempt given back), a disabled channel (suppressed) and an e-mail rendered in the batch."""
    settings.NOTIFICATIONS_BACKOFF_BASE, settings.NOTIFICATIONS_MAX_ATTEMPTS = 30, 6
    receiver.statuses = {"/busy": 503, "/throttled": 429, "/gone": 410, "/last": 502}
    tenant, member = world.tenant("a"), world.user("a", "operator")
    personal = [r for i in range(3) for r in _rows(world, receiver, f"/member/{i}", 1)]
    shared = _rows(world, receiver, "/shared", 4)
    both = NotificationFactory(tenant=tenant, recipient=member, title="db-1 down", metadata={"host": "db-1"})
    email = DeliveryFactory(notification=both, kind="email", recipient=member)
    hooked = DeliveryFactory(notification=both, kind="webhook", recipient=None, channel=personal[0].channel)
    busy, throttled = _rows(world, receiver, "/busy", 1), _rows(world, receiver, "/throttled", 1)
    gone = _rows(world, receiver, "/gone", 1)
    last = _rows(world, receiver, "/last", 1, attempts=5)
    until = timezone.now() + timedelta(minutes=7)
    tripped = _rows(world, receiver, "/tripped", 2, channel_kw={"circuit_open_until": until, "consecutive_failures": 5})
    off = _rows(world, receiver, "/off", 1, channel_kw={"enabled": False})
    batch = personal + shared + [email, hooked] + busy + throttled + gone + last + tripped + off
    before = timezone.now()

    result = services.deliveries_send(delivery_ids=[d.pk for d in batch])

    assert result == {"sent": 9, "failed": 2, "retry": 2, "suppressed": 1, "deferred": 2}
    rows = {d.pk: d for d in Delivery.objects.filter(pk__in=[d.pk for d in batch])}
    for d in personal + shared + [email, hooked]:
        assert (rows[d.pk].status, rows[d.pk].attempts, rows[d.pk].last_error) == (DeliveryStatus.SENT, 1, "") and rows[d.pk].sent_at
    for d in busy + throttled:
        row = rows[d.pk]
        assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1), row.last_error
        assert 20 <= (row.next_attempt_at - before).total_seconds() <= 37  # 30 s ± 20 %
    assert "HTTP 503" in rows[busy[0].pk].last_error and "HTTP 429" in rows[throttled[0].pk].last_error
    assert (rows[gone[0].pk].status, rows[gone[0].pk].attempts) == (DeliveryStatus.FAILED, 1) and "HTTP 410" in rows[gone[0].pk].last_error
    assert (rows[last[0].pk].status, rows[last[0].pk].attempts) == (DeliveryStatus.FAILED, 6) and "HTTP 502" in rows[last[0].pk].last_error
    for d in tripped:
        row = rows[d.pk]
        assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.PENDING, 0, until)
        assert row.last_error.startswith("Deferred: the channel's circuit is open")
    assert (rows[off[0].pk].status, rows[off[0].pk].reason, rows[off[0].pk].attempts) == (DeliveryStatus.SUPPRESSED, SuppressReason.CHANNEL_DISABLED, 0)
    assert "/tripped" not in receiver.hits and "/off" not in receiver.hits
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [member.email] and "db-1 down" in mailoutbox[0].subject

    # every webhook carried its own delivery's payload, signed with its channel's secret
    posted = {json.loads(body)["delivery_id"]: (path, headers, body) for path, headers, body in receiver.seen}
    assert set(posted) == {d.pk for d in batch if d.kind == "webhook" and d not in tripped + off}
    path, headers, body = posted[hooked.pk]
    payload = json.loads(body)
    assert path == "/member/0" and headers["webhook-id"] == f"msg_delivery_{hooked.pk}"
    assert (payload["id"], payload["title"], payload["metadata"], payload["tenant_id"]) == (both.pk, "db-1 down", {"host": "db-1"}, tenant.pk)
    assert payload["created_at"] == both.created_at.isoformat()
    expected = hmac.new(b"s3cret", headers["X-Opsportal-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Opsportal-Signature"] == f"sha256={expected}"


def test_a_batch_sends_channels_concurrently_within_the_bound_and_each_channel_in_order(world, receiver, settings):
    settings.NOTIFICATIONS_SEND_CONCURRENCY = 3
    receiver.delay = 0.05
    members = [r for i in range(9) for r in _rows(world, receiver, f"/member/{i}", 1)]
    shared = _rows(world, receiver, "/shared", 6)

    assert services.deliveries_send(delivery_ids=[d.pk for d in members + shared])["sent"] == 15

    assert receiver.most_in_flight["*"] == 3, receiver.most_in_flight  # several channels at once, never more than the bound
    assert receiver.most_in_flight["/shared"] == 1  # one channel's deliveries one after the other ...
    shared_order = [json.loads(body)["delivery_id"] for path, _, body in receiver.seen if path == "/shared"]
    assert shared_order == [d.pk for d in shared]  # ... in the order they were claimed
