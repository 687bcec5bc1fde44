"""Redis (broker and cache) stopped while tickets, alerts and notifications are created through
the API of a live gunicorn: the API keeps answering, nothing is lost, and once Redis is back
every delivery goes out exactly once (the sweepers beat would run re-queue what the outage
left behind)."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from tests.conftest import wait_for
from tests.faults.harness import SmtpSink, broker_app, http, jwt_for, portal_env, start_web, start_worker, worker_ready

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = float(os.environ.get("FAULT_REDIS_OUTAGE_SECONDS", "12"))


def test_api_answers_through_a_redis_outage_and_every_delivery_goes_out_once(world, private_redis, test_db_url, tmp_path):
    from apps.alerts.models import Alert
    from apps.alerts.services import ingest_token_create
    from apps.notifications.choices import DeliveryStatus
    from apps.notifications.models import Delivery, Notification
    from apps.tickets.models import Ticket

    smtp = SmtpSink().start()
    admin, viewer = world.user("a", "admin"), world.user("a", "viewer")
    token, ingest = jwt_for(admin), ingest_token_create(actor=None, tenant=world.tenant("a"), name="faults")[1]
    env = portal_env(
        database_url=test_db_url, redis_url=private_redis.url, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        EVENTS_SWEEP_AFTER_SECONDS=2, NOTIFICATIONS_SWEEP_AFTER=2, NOTIFICATIONS_BACKOFF_BASE=1,
        NOTIFICATIONS_RATE_LIMIT_COUNT=100000,
    )
    web, base = start_web(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "worker.log")
    client = broker_app(private_redis.url)
    answers: Counter = Counter()
    slowest = 0.0
    created = {"tickets": [], "alerts": [], "notes": []}

    def one_round(i: int, phase: str) -> None:
        nonlocal slowest
        calls = [
            ("tickets", "POST", "/api/v1/tickets/", token, {"subject": f"{phase} ticket {i}", "message": "m", "priority": "high"}),
            ("alerts", "POST", "/api/v1/alerts/ingest", ingest, [{"labels": {"alertname": f"{phase}-{i}", "severity": "warning"}}]),
            ("notes", "POST", "/api/v1/notifications/team", token, {"title": f"{phase} note #{i}#", "team_members": [viewer.pk], "priority": "high"}),
        ]
        for kind, method, path, auth, body in calls:
            started = time.monotonic()
            status, payload = http(method, base + path, token=auth, body=body)
            slowest = max(slowest, time.monotonic() - started)
            answers[(phase, status)] += 1
            assert status in (200, 201), (phase, path, status, payload, web.output()[-3000:])
            created[kind].append(f"{phase}-{i}" if kind == "alerts" else body["title" if kind == "notes" else "subject"])

    try:
        worker_ready(worker)
        one_round(0, "before")
        private_redis.stop()
        down_at, i = time.monotonic(), 0
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            i += 1
            one_round(i, "outage")
        outage_rounds = i
        private_redis.start()
        back_at = time.monotonic()
        one_round(0, "after")

        restarts = 0

        def all_sent():
            nonlocal worker, restarts
            # kombu 5.7 (redis transport) lets the worker die with "Unrecoverable error:
            # AttributeError: 'NoneType' object has no attribute 'hostname'" when the broker goes
            # away while it holds unacked messages (celery/kombu#582 family). Like docker-compose's
            # `restart: unless-stopped`, we start it again; the rows in PostgreSQL carry the work.
            if worker.proc.poll() is not None:
                restarts += 1
                worker.stop()
                worker = start_worker(env, tmp_path / f"worker-restart{restarts}.log")
                worker_ready(worker)
            # what beat does every 30 s: sweep the events outbox and the deliveries
            client.send_task("core.sweep_events")
            client.send_task("notifications.sweep_deliveries")
            pending = Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).count()
            notes = Notification.objects.filter(title__in=created["notes"], recipient=viewer).count()
            return pending == 0 and notes == len(created["notes"]) and Delivery.objects.exists()

        wait_for(all_sent, timeout=90, interval=2)
        recovered_in = time.monotonic() - back_at
    finally:
        web.stop()
        worker.stop()
        smtp.stop()

    # nothing lost
    assert Ticket.objects.filter(subject__in=created["tickets"]).count() == len(created["tickets"])
    assert Alert.objects.filter(tenant=world.tenant("a"), labels__alertname__in=created["alerts"]).count() == len(created["alerts"])
    assert Notification.objects.filter(title__in=created["notes"], recipient=viewer).count() == len(created["notes"])
    # every email delivery went out exactly once
    emails = Delivery.objects.filter(kind="email", status=DeliveryStatus.SENT)
    unsent = Delivery.objects.filter(kind="email", status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED])
    assert not unsent.exists(), list(unsent.values("status", "last_error"))
    sent = smtp.subjects()
    duplicates = [k for k, n in Counter(sent).items() if n > 1]
    assert not duplicates, duplicates
    assert len(sent) == emails.count()
    for title in created["notes"]:
        assert sum(1 for rcpt, subject in sent if title in subject and rcpt == viewer.email) == 1, title
    print(f"\nFAULT redis_outage: {OUTAGE_SECONDS:.0f}s down, {outage_rounds * 3} API writes during the outage, "
          f"answers={dict(answers)}, slowest={slowest:.2f}s, all {emails.count()} email deliveries sent once, "
          f"{recovered_in:.1f}s after Redis returned; worker restarts by the supervisor={restarts}")
