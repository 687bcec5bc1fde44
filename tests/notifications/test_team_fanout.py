"""Team fan-out at scale: exact rows for 10,000 members, a query count that does not grow with the
team, the outbox event in the same transaction, nothing written on rollback, and deliveries
enqueued only after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.choices import Role
from apps.core.crypto import encrypt
from apps.core.models import Event
from apps.notifications import services
from apps.notifications.choices import DeliveryStatus, SuppressReason
from apps.notifications.models import ChannelConfig, Delivery, Notification, Preference
from apps.tenants.models import Membership


def _team(tenant, n: int, tag: str, role=Role.SUPPORT_AGENT) -> list[int]:
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"fan-{tag}-{i}", email=f"fan-{tag}-{i}@x.test") for i in range(n)], batch_size=2000)
    Membership.objects.bulk_create([Membership(user=u, organization=tenant, role=role) for u in users], batch_size=2000)
    return [u.pk for u in users]


def test_ten_thousand_members_get_exactly_their_notifications_and_deliveries_in_constant_queries(world, settings, monkeypatch):
    settings.NOTIFICATIONS_RATE_LIMIT_COUNT = 2
    monkeypatch.setattr(services, "_enqueue_after_commit", lambda result: None)
    tenant = world.tenant("a")
    small = _team(tenant, 3, "small", role=Role.VIEWER)
    big = _team(tenant, 10_000, "big")
    Membership.objects.filter(organization=tenant, role=Role.SUPPORT_AGENT).exclude(user_id__in=big).update(is_active=False)
    in_app, muted, digest, hooked, flooded = big[0], big[1], big[2], big[3], big[4]
    Preference.objects.bulk_create([
        Preference(tenant=tenant, user_id=in_app, channels=["in_app"]),
        Preference(tenant=tenant, user_id=muted, channels=["in_app", "email"], min_priority={"email": "urgent"}),
        Preference(tenant=tenant, user_id=digest, channels=["email"], digest="hourly"),
        Preference(tenant=tenant, user_id=hooked, channels=["email", "webhook"]),
    ])
    ChannelConfig.objects.create(tenant=tenant, name="hook", kind="webhook", user_id=hooked, url=encrypt("http://127.0.0.1:9/h"))
    ChannelConfig.objects.create(tenant=tenant, name="team room", kind="webhook", url=encrypt("http://127.0.0.1:9/t"))
    for i in range(2):  # two recent e-mails: the limit is reached
        earlier = Notification.objects.create(tenant=tenant, recipient_id=flooded, title=f"earlier {i}")
        Delivery.objects.create(tenant=tenant, notification=earlier, recipient_id=flooded, kind="email", status="sent",
                                created_at=timezone.now() - timedelta(seconds=10))
    with CaptureQueriesContext(connection) as few:
        services.notify_team(tenant=tenant, role_filter=Role.VIEWER, title="small", priority="high")
    with CaptureQueriesContext(connection) as many:
        rows = services.notify_team(tenant=tenant, role_filter=Role.SUPPORT_AGENT, title="Maintenance", priority="high")
    assert len(many.captured_queries) == len(few.captured_queries)

    assert len(rows) == 10_000 and sorted(n.recipient_id for n in rows) == sorted(big)
    stored = Notification.objects.filter(tenant=tenant, title="Maintenance")
    assert stored.count() == 10_000 and {n.pk for n in rows} == set(stored.values_list("pk", flat=True))
    assert set(small) <= set(Notification.objects.filter(title="small").values_list("recipient_id", flat=True))
    d = Delivery.objects.filter(notification__title="Maintenance")
    # 9,999 e-mails (not the in-app-only member), one personal webhook, one shared team room
    assert d.count() == 10_001
    assert not d.filter(recipient_id=in_app).exists()
    assert d.get(recipient_id=muted).reason == SuppressReason.PREFERENCE
    assert d.get(recipient_id=digest).status == DeliveryStatus.BATCHED
    assert sorted(d.filter(recipient_id=hooked).values_list("kind", "status")) == [("email", "pending"), ("webhook", "pending")]
    assert d.get(recipient_id=flooded).reason == SuppressReason.RATE_LIMIT
    shared = d.get(recipient__isnull=True)
    assert (shared.kind, shared.notification.recipient_id) == ("webhook", big[0])
    assert d.filter(status=DeliveryStatus.PENDING).count() == 9_998
    assert all(r.metadata == {"team_notification": True, "role_filter": Role.SUPPORT_AGENT, "member_count": 10_000} for r in rows[:3])


def test_the_outbox_event_is_written_in_the_same_transaction(world, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    members = _team(tenant, 3, "ev")
    with django_capture_on_commit_callbacks(execute=False):
        rows = services.notify_team(tenant=tenant, team_members=members, title="Disk full", priority="high", actor=world.user("a", "owner"))
        event = Event.objects.get(name="notification.team_sent")
    assert event.tenant_id == tenant.pk and event.actor_id == world.user("a", "owner").pk
    p = event.payload
    assert (p["id"], p["title"], p["recipients"], p["deliveries"], p["pending"]) == (rows[0].pk, "Team notified: Disk full", 3, 3, 3)


def test_a_rolled_back_fan_out_writes_nothing_and_enqueues_nothing(world, monkeypatch, django_capture_on_commit_callbacks):
    enqueued = []
    monkeypatch.setattr(services, "enqueue_deliveries", enqueued.append)
    tenant = world.tenant("a")
    members = _team(tenant, 300, "rb")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        services.notify_team(tenant=tenant, team_members=members, title="never")
        assert Notification.objects.filter(title="never").count() == 300
        raise RuntimeError("the caller's transaction fails")
    assert not Notification.objects.filter(title="never").exists()
    assert not Delivery.objects.filter(recipient_id__in=members).exists()
    assert not Event.objects.filter(name="notification.team_sent").exists()
    assert callbacks == [] and enqueued == []


def test_deliveries_are_enqueued_after_commit_and_only_the_pending_ones(world, monkeypatch, django_capture_on_commit_callbacks):
    enqueued = []
    monkeypatch.setattr(services, "enqueue_deliveries", enqueued.extend)
    tenant = world.tenant("a")
    members = _team(tenant, 5, "oc")
    Preference.objects.create(tenant=tenant, user_id=members[0], channels=["email"], digest="daily")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.notify_team(tenant=tenant, team_members=members, title="later")
    assert enqueued == []  # nothing goes to the broker before the commit
    for callback in callbacks:
        callback()
    pending = Delivery.objects.filter(recipient_id__in=members, status=DeliveryStatus.PENDING)
    assert sorted(enqueued) == sorted(pending.values_list("pk", flat=True)) and len(enqueued) == 4


def test_a_fan_outs_deliveries_carry_their_notifications_tenant_and_recipient(world, monkeypatch):
    """Delivery.tenant and .recipient are copies of the notification's (the database checks
    them once, on the notification): a shared channel's delivery has no recipient."""
    monkeypatch.setattr(services, "_enqueue_after_commit", lambda result: None)
    tenant = world.tenant("a")
    members = _team(tenant, 20, "copy")
    Preference.objects.create(tenant=tenant, user_id=members[3], channels=["in_app", "email", "webhook"])
    ChannelConfig.objects.create(tenant=tenant, name="mine", kind="webhook", user_id=members[3], url=encrypt("http://127.0.0.1:9/m"))
    ChannelConfig.objects.create(tenant=tenant, name="team room", kind="webhook", url=encrypt("http://127.0.0.1:9/t"))
    services.notify_team(tenant=tenant, team_members=members, title="copies")
    rows = list(Delivery.objects.filter(notification__title="copies").select_related("notification", "channel"))
    assert len(rows) == 22 and all(d.tenant_id == d.notification.tenant_id == tenant.pk for d in rows)
    assert [d.channel.name for d in rows if d.recipient_id is None] == ["team room"]
    assert all(d.recipient_id == d.notification.recipient_id for d in rows if d.channel is None or d.channel.user_id)


def _orphans():
    """Deliveries whose notification row is gone (the key is not checked by the database)."""
    return Delivery.objects.filter(notification_id__isnull=False).exclude(notification_id__in=Notification.objects.values("pk"))


@pytest.mark.parametrize("writer", ["set_based", "portable"])
def test_deleting_a_member_or_their_notification_deletes_their_deliveries(world, monkeypatch, writer):
    """No delivery outlives its recipient or notification (the ORM's cascade; no orphan row):
    neither key is checked by the database, whichever writer wrote the rows."""
    from django.db.models.deletion import ProtectedError

    from apps.notifications import planning

    if writer == "portable":
        monkeypatch.setattr(planning, "write_set_based", planning.write_with_orm)
    monkeypatch.setattr(services, "_enqueue_after_commit", lambda result: None)
    tenant = world.tenant("a")
    members = _team(tenant, 5, "gone")
    Preference.objects.create(tenant=tenant, user_id=members[3], channels=["in_app", "email", "webhook"])
    ChannelConfig.objects.create(tenant=tenant, name="mine", kind="webhook", user_id=members[3], url=encrypt("http://127.0.0.1:9/m"))
    ChannelConfig.objects.create(tenant=tenant, name="team room", kind="webhook", url=encrypt("http://127.0.0.1:9/t"))
    rows = services.notify_team(tenant=tenant, team_members=members, title="bye")
    assert Delivery.objects.filter(notification_id__in=[n.pk for n in rows]).count() == 5 + 1 + 1
    get_user_model().objects.filter(pk=members[0]).delete()  # carried the team room's delivery too
    Notification.objects.filter(pk=rows[1].pk).delete()  # a queryset's delete
    Notification.objects.get(pk=rows[3].pk).delete()  # an instance's: its e-mail and personal webhook
    assert sorted(Delivery.objects.values_list("recipient_id", flat=True)) == [members[2], members[4]]
    assert not _orphans().exists()
    with pytest.raises(ProtectedError):
        tenant.delete()


@pytest.mark.parametrize("writer", ["set_based", "portable"])
def test_a_member_near_the_rate_limit_gets_only_what_is_left_of_it(world, settings, monkeypatch, writer):
    """Limit 3: two recent deliveries leave one (the e-mail; the personal webhook is suppressed),
    one leaves two (both go), so do none; only the limit's last stretch is read."""
    from apps.notifications import planning

    if writer == "portable":
        monkeypatch.setattr(planning, "write_set_based", planning.write_with_orm)
    settings.NOTIFICATIONS_RATE_LIMIT_COUNT = 3
    monkeypatch.setattr(services, "_enqueue_after_commit", lambda result: None)
    tenant = world.tenant("a")
    near, halfway, fresh = members = _team(tenant, 3, "near")
    for uid in members:
        Preference.objects.create(tenant=tenant, user_id=uid, channels=["in_app", "email", "webhook"])
        ChannelConfig.objects.create(tenant=tenant, name=f"hook {uid}", kind="webhook", user_id=uid, url=encrypt("http://127.0.0.1:9/h"))
    for uid, recent in ((near, 2), (halfway, 1)):
        for i in range(recent):
            earlier = Notification.objects.create(tenant=tenant, recipient_id=uid, title=f"earlier {i}")
            Delivery.objects.create(tenant=tenant, notification=earlier, recipient_id=uid, kind="email", status="sent")
    services.notify_team(tenant=tenant, team_members=members, title="near")
    got = {(d.recipient_id, d.kind): (d.status, d.reason) for d in Delivery.objects.filter(notification__title="near")}
    assert got == {
        (near, "email"): ("pending", ""), (near, "webhook"): ("suppressed", SuppressReason.RATE_LIMIT),
        (halfway, "email"): ("pending", ""), (halfway, "webhook"): ("pending", ""),
        (fresh, "email"): ("pending", ""), (fresh, "webhook"): ("pending", ""),
    }
