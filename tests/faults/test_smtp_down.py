"""The SMTP relay is down when an email delivery is due: the delivery stays pending with its
error, retries with a growing backoff, is visible as such in the admin, and goes out exactly once
when the relay is back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.faults.harness import SmtpSink, delivery_admin_pages, retry_pending_delivery

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

    waits = retry_pending_delivery(delivery, error=lambda text: "refused" in text.lower() or "connect" in text.lower())
    assert delivery.attempts == 4
    detail = delivery_admin_pages(client, world, delivery)
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
