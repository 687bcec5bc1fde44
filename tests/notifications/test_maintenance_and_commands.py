"""Retention purges registered with apps.maintenance (notifications, finished deliveries) and the
`send_test_notification` / `notifications_sweep` commands (real loopback webhook and locmem mail)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.maintenance.choices import RunStatus
from apps.maintenance.services import maintenance_run
from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Delivery, Notification
from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory


def _aged(obj, days):
    type(obj).objects.filter(pk=obj.pk).update(created_at=timezone.now() - timedelta(days=days))
    return obj


@pytest.fixture
def owner(world):
    return world.user("a", "owner")


def _notification(world, owner, days, *statuses, strict=False):
    n = _aged(NotificationFactory(tenant=world.tenant("a"), recipient=owner), days)
    for kind, status in zip(("email", "slack", "webhook"), statuses, strict=False):
        _aged(DeliveryFactory(notification=n, kind=kind, status=status), days)
    return n


def test_purge_notifications_spares_recent_and_in_flight(world, owner, settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = 90
    old = _notification(world, owner, 120, DeliveryStatus.SENT, DeliveryStatus.FAILED)
    in_flight = _notification(world, owner, 120, DeliveryStatus.SENT, DeliveryStatus.PENDING)
    recent = _notification(world, owner, 10, DeliveryStatus.SENT)
    # an old notification batched into a digest that has not gone out yet stays with its digest
    digest = Delivery.objects.create(tenant=world.tenant("a"), recipient=owner, kind="email", status=DeliveryStatus.PENDING)
    carried = _notification(world, owner, 120, DeliveryStatus.DIGESTED)
    carried.deliveries.update(digest=digest)

    dry = maintenance_run(task="purge_notifications", dry_run=True)
    assert dry.rows_removed == {"notifications_delivery": 2, "notifications_notification": 1}
    run = maintenance_run(task="purge_notifications", batch_size=1)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.rows_removed == {"notifications_delivery": 2, "notifications_notification": 1}
    assert set(Notification.objects.values_list("pk", flat=True)) == {in_flight.pk, recent.pk, carried.pk}
    assert not Delivery.objects.filter(notification_id=old.pk).exists()


def test_purge_deliveries_keeps_unfinished_and_notifications(world, owner, settings):
    settings.NOTIFICATIONS_DELIVERY_RETENTION_DAYS = 30
    n = _notification(world, owner, 40, DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED, DeliveryStatus.PENDING)
    _notification(world, owner, 5, DeliveryStatus.FAILED)
    digest = Delivery.objects.create(tenant=world.tenant("a"), recipient=owner, kind="email", status=DeliveryStatus.SENDING)
    waiting = _notification(world, owner, 40, DeliveryStatus.DIGESTED)
    waiting.deliveries.update(digest=digest)

    run = maintenance_run(task="purge_deliveries")
    assert run.rows_removed == {"notifications_delivery": 2}, run.error
    assert list(n.deliveries.values_list("status", flat=True)) == [DeliveryStatus.PENDING]
    assert Notification.objects.filter(pk=n.pk).exists()
    assert waiting.deliveries.exists()


def test_purge_commands_and_zero_retention(world, owner, settings, capsys):
    _notification(world, owner, 400, DeliveryStatus.SENT)
    settings.NOTIFICATIONS_RETENTION_DAYS = 0
    call_command("purge_notifications")
    assert "removed 0 rows" in capsys.readouterr().out and Notification.objects.count() == 1
    call_command("purge_notifications", "--param", "days=365", "--dry-run")
    assert "would remove 2 rows" in capsys.readouterr().out
    call_command("purge_deliveries", "--param", "days=365")
    assert "removed 1 rows" in capsys.readouterr().out and not Delivery.objects.exists()


def test_registered_with_beat_schedules():
    from apps.core.periodic import collect

    names = {s.name for s in collect()}
    assert {"maintenance: purge_notifications", "maintenance: purge_deliveries"} <= names


# -- commands ------------------------------------------------------------------------------------
def test_send_test_notification_to_a_user_sends_now(world, owner, capsys):
    call_command("send_test_notification", "--user", owner.username, "--priority", "high", "--send-now")
    n = Notification.objects.get(recipient=owner)
    assert n.metadata["test"] is True and n.tenant == world.tenant("a")
    assert Delivery.objects.get(notification=n, kind="email").status == DeliveryStatus.SENT
    assert mail.outbox and mail.outbox[0].to == [owner.email]
    assert f"notification #{n.pk}" in capsys.readouterr().out


def test_send_test_notification_to_a_channel_hits_the_real_peer(world, http_peer, capsys):
    channel = ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url + "/hook", secret="k")
    call_command("send_test_notification", "--channel", str(channel.pk))
    assert [r["path"] for r in http_peer.requests] == ["/hook"]
    http_peer.statuses = [404]
    with pytest.raises(CommandError, match="404"):
        call_command("send_test_notification", "--channel", str(channel.pk))


def test_send_test_notification_refuses_unknown_and_foreign(world):
    with pytest.raises(CommandError, match="No user"):
        call_command("send_test_notification", "--user", "ghost")
    with pytest.raises(CommandError, match="not an active member"):
        call_command("send_test_notification", "--user", world.user("a", "owner").username, "--tenant", world.tenant("b").slug)


def test_notifications_sweep_sends_what_the_broker_lost(world, owner, capsys, settings):
    n = NotificationFactory(tenant=world.tenant("a"), recipient=owner)
    d = DeliveryFactory(notification=n, kind="email", status=DeliveryStatus.PENDING,
                        next_attempt_at=timezone.now() - timedelta(seconds=settings.NOTIFICATIONS_SWEEP_AFTER + 5))
    call_command("notifications_sweep", "--digests")  # tasks run eagerly in tests: enqueued = sent
    assert "1 deliveries enqueued, 0 digests created" in capsys.readouterr().out
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SENT and len(mail.outbox) == 1
