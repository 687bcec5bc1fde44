"""The SMTP relay is down when an email delivery is due: the delivery stays pending with its
error, retries with a growing backoff, is visible as such in the admin, and goes out exactly once
when the relay is back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.faults.harness import SmtpSink

pytestmark = [pytest.mark.faults]


def test_smtp_down_retries_with_backoff_visible_in_admin_then_sends_once(world, settings, client, django_capture_on_commit_callbacks):
    from apps.notifications import services
    from apps.notifications.choices import DeliveryStatus
    from apps.notifications.models import Delivery

    smtp = SmtpSink()  # a port, nothing listening yet: the relay is down
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", smtp.port, 2
    viewer = world.user("a", "viewer")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[viewer.pk], actor=None, title="relay test", priority="high")
    delivery = Delivery.objects.get(kind="email", recipient=viewer)

    waits, now = [], timezone.now()
    for _ in range(3):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING, (delivery.status, delivery.last_error)
        assert "refused" in delivery.last_error.lower() or "connect" in delivery.last_error.lower(), delivery.last_error
        waits.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at + timedelta(seconds=1)
        services.deliveries_send(delivery_ids=[delivery.pk], now=now)
    delivery.refresh_from_db()
    assert delivery.attempts == 4
    assert waits[0] < waits[1] < waits[2], waits  # exponential backoff

    client.force_login(world.user("platform", "admin"))
    page = client.get(reverse("admin:notifications_delivery_changelist") + "?status=pending").content.decode()
    assert f">{delivery.pk}<" in page or f"/{delivery.pk}/change/" in page
    detail = client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk])).content.decode()
    assert "refused" in detail.lower() or "connect" in detail.lower()

    smtp.start()
    try:
        services.deliveries_send(delivery_ids=[delivery.pk], now=delivery.next_attempt_at + timedelta(seconds=1))
        services.deliveries_send(delivery_ids=[delivery.pk], now=delivery.next_attempt_at + timedelta(seconds=2))  # a duplicate task
    finally:
        smtp.stop()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert len([1 for rcpt, subject in smtp.subjects() if rcpt == viewer.email and "relay test" in subject]) == 1
    print(f"\nFAULT smtp_down: attempts={delivery.attempts} backoff waits={[round(w) for w in waits]}s, sent once when the relay returned")
