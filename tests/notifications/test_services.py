"""Fan-out, preferences, quiet hours, digests, rate limits, backoff and the event handler."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.choices import Role
from apps.core.events import publish
from apps.notifications import services
from apps.notifications.choices import DeliveryStatus, Digest, Priority, SuppressReason
from apps.notifications.models import Delivery, Notification, Preference
from apps.notifications.planning import backoff_seconds, digest_due, in_quiet_hours, local_now
from tests.factories import MembershipFactory, UserFactory
from tests.factories.notifications import PreferenceFactory

UTC = ZoneInfo("UTC")


def _extra_admins(world, n=3):
    users = [UserFactory(username=f"extra-admin-{i}") for i in range(n)]
    for u in users:
        MembershipFactory(user=u, organization=world.tenant("a"), role=Role.ADMIN)
    return users


def test_notify_team_by_role_creates_one_per_member_with_team_metadata(world):
    extra = _extra_admins(world)
    rows = services.notify_team(tenant=world.tenant("a"), role_filter="admin", title="Maintenance tonight", priority="high", actor=world.user("a", "owner"))
    assert sorted(n.recipient_id for n in rows) == sorted([world.user("a", "admin").pk, *[u.pk for u in extra]])
    assert all(n.pk and n.priority == Priority.HIGH for n in rows)
    assert all(n.metadata == {"team_notification": True, "role_filter": "admin", "member_count": 4} for n in rows)
    # default preference: in-app + email → one email delivery each
    assert Delivery.objects.filter(notification__in=rows, kind="email").count() == 4
    assert not Notification.objects.filter(tenant=world.tenant("b")).exists()


def test_notify_team_by_members(world):
    members = [world.user("a", "viewer").pk, world.user("a", "operator").pk]
    rows = services.notify_team(tenant=world.tenant("a").pk, team_members=members, title="Hi", auto_send=False)
    assert {n.recipient_id for n in rows} == set(members)
    assert rows[0].metadata["member_count"] == 2
    assert not Delivery.objects.exists()  # auto_send=False: in-app only


@pytest.mark.parametrize(
    "kwargs, field, text",
    [
        ({"role_filter": "wizard"}, "role_filter", "Unknown role 'wizard'"),
        ({}, "__all__", "exactly one of team_members"),
        ({"role_filter": "admin", "team_members": [1]}, "__all__", "exactly one of team_members"),
        ({"role_filter": "admin", "title": "  "}, "title", "needs a title"),
        ({"role_filter": "admin", "priority": "apocalyptic"}, "priority", "Unknown priority"),
    ],
)
def test_notify_team_refuses_bad_input(world, kwargs, field, text):
    kwargs.setdefault("title", "T")
    with pytest.raises(ValidationError) as exc:
        services.notify_team(tenant=world.tenant("a"), **kwargs)
    assert text in " ".join(exc.value.messages)
    assert not Notification.objects.exists()


def test_notify_team_refuses_foreign_members_instead_of_dropping_them(world):
    foreign = world.user("b", "owner")
    with pytest.raises(ValidationError) as exc:
        services.notify_team(tenant=world.tenant("a"), team_members=[world.user("a", "admin").pk, foreign.pk], title="T")
    assert str(foreign.pk) in " ".join(exc.value.messages)
    assert not Notification.objects.exists()


def test_notify_team_needs_a_role_that_may_and_the_own_tenant(world):
    with pytest.raises(PermissionDenied):
        services.notify_team(tenant=world.tenant("a"), role_filter="admin", title="T", actor=world.user("a", "viewer"))
    with pytest.raises(PermissionDenied):
        services.notify_team(tenant=world.tenant("b"), role_filter="admin", title="T", actor=world.user("a", "owner"))


def test_one_failing_recipient_does_not_stop_the_rest(world):
    extra = _extra_admins(world, 2)
    # A row that bypassed validation (bad time zone) makes planning for that user fail.
    Preference.objects.create(tenant=world.tenant("a"), user=extra[0], channels=["email"], timezone="Mars/Olympus")
    rows = services.notify_team(tenant=world.tenant("a"), role_filter="admin", title="T")
    assert len(rows) == 3
    assert not Delivery.objects.filter(recipient=extra[0]).exists()
    assert Delivery.objects.filter(recipient__in=[extra[1], world.user("a", "admin")]).count() == 2


# -- quiet hours ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tz, start, end, utc_now, quiet",
    [
        ("UTC", time(22), time(7), datetime(2026, 6, 1, 23, 0, tzinfo=UTC), True),
        ("UTC", time(22), time(7), datetime(2026, 6, 1, 7, 0, tzinfo=UTC), False),  # end is exclusive
        ("UTC", time(9), time(17), datetime(2026, 6, 1, 12, 0, tzinfo=UTC), True),  # not wrapping midnight
        ("Europe/Berlin", time(22), time(7), datetime(2026, 6, 1, 21, 30, tzinfo=UTC), True),  # 23:30 CEST
        ("Europe/Berlin", time(22), time(7), datetime(2026, 1, 15, 21, 30, tzinfo=UTC), True),  # 22:30 CET
        ("Europe/Berlin", time(22), time(7), datetime(2026, 1, 15, 20, 30, tzinfo=UTC), False),  # 21:30 CET
        ("Asia/Kolkata", time(22), time(7), datetime(2026, 6, 1, 16, 45, tzinfo=UTC), True),  # 22:15 IST (+5:30)
        # DST starts in New York on 2026-03-08 at 02:00: 11:30 UTC is 07:30 EDT (awake), not 06:30 EST.
        ("America/New_York", time(22), time(7), datetime(2026, 3, 8, 11, 30, tzinfo=UTC), False),
        ("America/New_York", time(22), time(7), datetime(2026, 3, 8, 6, 30, tzinfo=UTC), True),  # 01:30 EST
        # DST ends on 2026-11-01: 11:30 UTC is 06:30 EST (still quiet), it would be 07:30 EDT.
        ("America/New_York", time(22), time(7), datetime(2026, 11, 1, 11, 30, tzinfo=UTC), True),
    ],
)
def test_quiet_hours_in_the_users_time_zone(tz, start, end, utc_now, quiet):
    pref = Preference(timezone=tz, quiet_start=start, quiet_end=end)
    assert in_quiet_hours(pref, local_now(pref, "UTC", utc_now)) is quiet


def test_quiet_hours_fall_back_to_the_tenant_time_zone():
    pref = Preference(quiet_start=time(22), quiet_end=time(7))
    at = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)
    assert in_quiet_hours(pref, local_now(pref, "Europe/Berlin", at)) is True
    assert in_quiet_hours(pref, local_now(pref, "UTC", at)) is False


def _quiet_now(world, user, **extra):
    now = timezone.now().astimezone(ZoneInfo("Asia/Tokyo"))
    return PreferenceFactory(
        tenant=world.tenant("a"), user=user, timezone="Asia/Tokyo",
        quiet_start=(now - timedelta(hours=1)).time(), quiet_end=(now + timedelta(hours=1)).time(), **extra,
    )


@pytest.mark.parametrize("priority, bypass, status", [("high", True, "suppressed"), ("urgent", True, "pending"), ("urgent", False, "suppressed")])
def test_quiet_hours_suppress_unless_urgent_bypasses(world, priority, bypass, status):
    user = world.user("a", "admin")
    _quiet_now(world, user, urgent_bypasses_quiet=bypass)
    services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="T", priority=priority)
    d = Delivery.objects.get(recipient=user)
    assert d.status == status
    assert d.reason == (SuppressReason.QUIET_HOURS if status == "suppressed" else "")
    assert Notification.objects.filter(recipient=user).count() == 1  # in-app is always there


def test_minimum_priority_per_channel_and_type_specific_preference(world):
    user = world.user("a", "admin")
    PreferenceFactory(tenant=world.tenant("a"), user=user, channels=["in_app", "email"], min_priority={"email": "high"})
    PreferenceFactory(tenant=world.tenant("a"), user=user, notification_type="ticket_assigned", channels=["in_app"])
    services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="low", priority="medium")
    services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="high", priority="high")
    services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="ticket", priority="urgent", notification_type="ticket_assigned")
    rows = {d.notification.title: (d.status, d.reason) for d in Delivery.objects.select_related("notification")}
    assert rows == {"low": ("suppressed", "preference"), "high": ("pending", "")}


def test_rate_limit_suppresses_a_flood_per_recipient(world, settings):
    settings.NOTIFICATIONS_RATE_LIMIT_COUNT = 2
    user, other = world.user("a", "admin"), world.user("a", "operator")
    for i in range(3):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title=f"n{i}")
    services.notify_team(tenant=world.tenant("a"), team_members=[other.pk], title="other")
    statuses = list(Delivery.objects.filter(recipient=user).order_by("id").values_list("status", "reason"))
    assert statuses == [("pending", ""), ("pending", ""), ("suppressed", "rate_limit")]
    assert Delivery.objects.get(recipient=other).status == "pending"


# -- digests ------------------------------------------------------------------------------------
def test_digest_due_times_respect_local_time_and_dst(settings):
    settings.NOTIFICATIONS_DIGEST_DAILY_HOUR = 8
    berlin = ZoneInfo("Europe/Berlin")
    daily = Preference(digest=Digest.DAILY)
    # Evening before the spring-forward night: next 08:00 is CEST (06:00 UTC), not 07:00 UTC.
    assert digest_due(daily, datetime(2026, 3, 28, 20, 0, tzinfo=berlin)) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert digest_due(daily, datetime(2026, 3, 28, 7, 59, tzinfo=berlin)) == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
    hourly = Preference(digest=Digest.HOURLY)
    assert digest_due(hourly, datetime(2026, 6, 1, 10, 17, tzinfo=UTC)) == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)


def test_digest_batches_non_urgent_and_groups_per_recipient(world, mailoutbox):
    a, b = world.user("a", "admin"), world.user("a", "operator")
    for u in (a, b):
        PreferenceFactory(tenant=world.tenant("a"), user=u, channels=["in_app", "email"], digest=Digest.HOURLY)
    services.notify_team(tenant=world.tenant("a"), team_members=[a.pk, b.pk], title="Disk 80%")
    services.notify_team(tenant=world.tenant("a"), team_members=[a.pk], title="Disk 90%", priority="high")
    services.notify_team(tenant=world.tenant("a"), team_members=[a.pk], title="Disk full", priority="urgent")
    batched = Delivery.objects.filter(status=DeliveryStatus.BATCHED)
    assert batched.count() == 3
    assert Delivery.objects.get(notification__title="Disk full").status == "pending"  # urgent skips the digest
    assert services.digests_send() == 0  # not due yet
    due = batched.first().next_attempt_at
    assert due.minute == 0 and due > timezone.now()
    mailoutbox.clear()
    assert services.digests_send(now=due + timedelta(seconds=1)) == 2
    digest_a = Delivery.objects.get(recipient=a, notification__isnull=True)
    assert digest_a.items.count() == 2 and set(digest_a.items.values_list("status", flat=True)) == {"digested"}
    services.deliveries_send(delivery_ids=[digest_a.pk], now=due + timedelta(seconds=2))
    digest_a.refresh_from_db()
    assert digest_a.status == "sent"
    mail = mailoutbox[-1]
    assert mail.to == [a.email] and "2 notifications" in mail.subject
    assert "Disk 80%" in mail.body and "Disk 90%" in mail.body and "Disk full" not in mail.body


@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_a_deleted_digest_leaves_the_rows_it_carried_unlinked(world, how):
    """The ORM sets the items' `digest` to NULL (the key is not checked by the database: it is
    written only by `digests_send`, in the transaction that creates the digest)."""
    a, b = world.user("a", "admin"), world.user("a", "operator")
    for u in (a, b):
        PreferenceFactory(tenant=world.tenant("a"), user=u, channels=["in_app", "email"], digest=Digest.HOURLY)
    services.notify_team(tenant=world.tenant("a"), team_members=[a.pk, b.pk], title="Disk 80%")
    due = Delivery.objects.filter(status=DeliveryStatus.BATCHED).first().next_attempt_at
    assert services.digests_send(now=due + timedelta(seconds=1)) == 2
    digest_a = Delivery.objects.get(recipient=a, notification__isnull=True)
    if how == "instance":
        digest_a.delete()
    else:
        Delivery.objects.filter(pk=digest_a.pk).delete()
    carried = Delivery.objects.get(recipient=a, notification__title="Disk 80%")
    assert carried.digest_id is None and carried.status == DeliveryStatus.DIGESTED
    assert Delivery.objects.get(recipient=b, notification__title="Disk 80%").digest.recipient == b  # the other digest keeps its rows
    assert not Delivery.objects.filter(digest_id__isnull=False).exclude(digest_id__in=Delivery.objects.values("pk")).exists()


# -- backoff ------------------------------------------------------------------------------------
def test_backoff_schedule_is_exponential_with_jitter_and_capped(settings):
    settings.NOTIFICATIONS_BACKOFF_BASE, settings.NOTIFICATIONS_BACKOFF_MAX = 30, 600
    for attempts, nominal in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600), (9, 600)]:
        samples = [backoff_seconds(attempts) for _ in range(50)]
        assert all(0.8 * nominal <= s <= 1.2 * nominal for s in samples)
        assert max(samples) - min(samples) > 0  # jitter spreads retries


# -- events ---------------------------------------------------------------------------------------
def test_event_notify_block_reaches_roles_and_users_once(world, django_capture_on_commit_callbacks):
    foreign = world.user("b", "owner")
    payload = {
        "id": 7, "object_type": "tickets.ticket", "title": "TCK-1 assigned to you", "url": "/admin/tickets/ticket/7/change/",
        "notify": {"type": "ticket_assigned", "priority": "high", "user_ids": [world.user("a", "support_agent").pk, foreign.pk], "roles": ["admin"]},
    }
    with django_capture_on_commit_callbacks(execute=True):
        event = publish("ticket.assigned", tenant=world.tenant("a"), payload=payload)
    rows = Notification.objects.filter(event_id=event.pk)
    assert {n.recipient_id for n in rows} == {world.user("a", "support_agent").pk, world.user("a", "admin").pk}
    n = rows.first()
    assert (n.notification_type, n.priority, n.title, n.action_url) == ("ticket_assigned", "high", "TCK-1 assigned to you", "/admin/tickets/ticket/7/change/")
    assert (n.related_entity_type, n.related_entity_id) == ("tickets.ticket", "7")
    event.refresh_from_db()
    assert event.status == "dispatched"
    assert services.notify_from_event(event=event) == 0  # a re-run notifies nobody twice
    assert rows.count() == 2


def test_recipients_the_publisher_emails_get_no_second_email_but_keep_their_other_channels(world, django_capture_on_commit_callbacks):
    from tests.factories.notifications import ChannelConfigFactory

    agent, admin = world.user("a", "support_agent"), world.user("a", "admin")
    PreferenceFactory(tenant=world.tenant("a"), user=agent, channels=["in_app", "email", "webhook"])
    hook = ChannelConfigFactory(tenant=world.tenant("a"), user=agent)
    payload = {"id": 7, "title": "New reply on TCK-1",
               "notify": {"type": "ticket_reply", "user_ids": [agent.pk, admin.pk], "emailed_user_ids": [agent.pk, "x"]}}
    with django_capture_on_commit_callbacks(execute=False):
        event = publish("ticket.message_added", tenant=world.tenant("a"), payload=payload)
        assert services.notify_from_event(event=event) == 2
    kinds = {(d.recipient_id, d.kind, d.channel_id) for d in Delivery.objects.filter(notification__event_id=event.pk)}
    assert kinds == {(agent.pk, "webhook", hook.pk), (admin.pk, "email", None)}


def test_event_without_notify_block_is_ignored(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish("ticket.created", tenant=world.tenant("a"), payload={"id": 1, "title": "x"})
    assert not Notification.objects.exists()
