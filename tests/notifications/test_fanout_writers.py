"""The set-based writer of the fan-out (PostgreSQL, one statement) writes the same rows as the
portable `bulk_create` one: choice values (not enum names), JSON metadata, ids that match the
returned objects, and the pending deliveries are the ones enqueued."""

from __future__ import annotations

from datetime import time
from uuid import uuid4

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from apps.notifications import planning, services
from apps.notifications.choices import DeliveryStatus, SuppressReason
from apps.notifications.models import Delivery, Notification
from apps.notifications.planning import Spec
from tests.factories import MembershipFactory, UserFactory
from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, PreferenceFactory


@pytest.mark.parametrize("portable", [False, True], ids=["set_based", "bulk_create"])
def test_fan_out_rows_are_the_same_with_either_writer(world, monkeypatch, portable):
    if portable:
        monkeypatch.setattr(planning, "write_set_based", planning.write_with_orm)
    tenant = world.tenant("a")
    quiet = world.user("a", "operator")
    PreferenceFactory(tenant=tenant, user=quiet, channels=["in_app", "email"], quiet_start=time(0, 0), quiet_end=time(23, 59, 59))
    enqueued = []
    monkeypatch.setattr(services, "_enqueue_after_commit", lambda result: enqueued.extend(result.pending_ids))
    created = services.notify_team(tenant=tenant, team_members=[world.user("a", r).pk for r in ("owner", "admin", "operator")],
                                   title="Disk full", message="92 %", priority="high", metadata={"host": "db-1", "n": [1, 2]})
    assert [n.pk for n in created] and all(n.pk for n in created)
    stored = {n.pk: n for n in Notification.objects.filter(pk__in=[n.pk for n in created])}
    assert set(stored) == {n.pk for n in created}
    row = stored[created[0].pk]
    assert (row.priority, row.notification_type, row.metadata["host"], row.metadata["n"]) == ("high", "system_alert", "db-1", [1, 2])
    assert row.metadata["team_notification"] is True and row.tenant_id == tenant.pk
    deliveries = Delivery.objects.filter(notification__in=created)
    assert sorted(deliveries.values_list("status", flat=True)) == ["pending", "pending", "suppressed"]
    muted = deliveries.get(recipient=quiet)
    assert (muted.kind, muted.reason) == ("email", SuppressReason.QUIET_HOURS)
    assert sorted(enqueued) == sorted(deliveries.filter(status=DeliveryStatus.PENDING).values_list("pk", flat=True))
    # the sequence moved past the drawn ids: an ordinary insert does not collide
    later = services.notify_team(tenant=tenant, team_members=[quiet.pk], title="next", auto_send=False)
    assert later[0].pk > max(stored)


def test_one_task_sends_concurrently_and_keeps_failures_per_row(world, http_peer, settings, django_capture_on_commit_callbacks):
    """A batch goes out through the thread pool; a 500 for some rows leaves exactly those pending."""
    from tests.factories import MembershipFactory, UserFactory
    from tests.factories.notifications import ChannelConfigFactory

    settings.NOTIFICATIONS_SEND_CONCURRENCY = 8
    tenant = world.tenant("a")
    people = [UserFactory(username=f"hooked-{i}") for i in range(12)]
    for u in people:
        MembershipFactory(user=u, organization=tenant, role="support_agent")
        ChannelConfigFactory(tenant=tenant, user=u, plain_url=f"{http_peer.url}/u/{u.pk}", secret="k")
        PreferenceFactory(tenant=tenant, user=u, channels=["in_app", "webhook"])
    http_peer.statuses = [500, 500, 500]
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=tenant, team_members=[u.pk for u in people], title="fan")
    rows = Delivery.objects.filter(kind="webhook")
    assert rows.count() == 12 and len(http_peer.requests) == 12
    assert {r["path"] for r in http_peer.requests} == {f"/u/{u.pk}" for u in people}
    assert rows.filter(status=DeliveryStatus.SENT).count() == 9
    retry = rows.filter(status=DeliveryStatus.PENDING)
    assert retry.count() == 3 and all("HTTP 500" in d.last_error and d.attempts == 1 for d in retry)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array parameter is PostgreSQL's")
def test_a_long_id_list_is_bound_as_an_array_of_the_columns_type(db):
    """psycopg sends a list of small ints as smallint[]; `integer = smallint` is a cross-type
    comparison PostgreSQL cannot hash, so a filter on it scanned the whole array for every row
    (1.6 s for the rate-limit read of a 10,000-member team with 40,000 recent deliveries)."""
    sql, params = planning.ids_filter(Delivery.objects.all(), "recipient_id", range(1, 200)).query.sql_with_params()
    assert '"notifications_delivery"."recipient_id" = ANY(%s::integer[])' in sql and params[0] == "{" + ",".join(map(str, range(1, 200))) + "}"
    sql, _ = planning.ids_filter(Delivery.objects.all(), "notification_id", range(1, 200)).query.sql_with_params()
    assert "= ANY(%s::bigint[])" in sql


class _Rollback(Exception):
    pass


def _written_by(writer, monkeypatch, **fan_out_args):
    """Every column of the rows one writer wrote (ids replaced by the owning recipient), the
    returned objects and outcome, then rolled back so the other writer sees the same team."""
    monkeypatch.setattr(planning, "write_set_based", writer)
    try:
        with transaction.atomic():
            result = planning.fan_out(**fan_out_args)
            by_id = dict(Notification.objects.filter(pk__in=[n.pk for n in result.notifications]).values_list("pk", "recipient_id"))
            notes = sorted((r.pop("id"), r)[1].items() for r in Notification.objects.filter(pk__in=by_id).values())
            deliveries = []
            for r in Delivery.objects.filter(notification_id__in=by_id).values():
                r["notification_id"] = by_id[r["notification_id"]]
                deliveries.append((r.pop("id") in result.pending_ids, sorted(r.items(), key=str)))
            stored = {r["id"]: r for r in Notification.objects.filter(pk__in=by_id).values()}
            returned = sorted((n.recipient_id, [(f.attname, getattr(n, f.attname), stored[n.pk][f.attname])
                                                for f in Notification._meta.concrete_fields if getattr(n, f.attname) != stored[n.pk][f.attname]])
                              for n in result.notifications)
            seen = (notes, sorted(deliveries, key=str), returned, result.delivery_count, len(result.pending_ids), result.failed)
            raise _Rollback
    except _Rollback:
        return seen


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based writer is PostgreSQL's")
def test_both_writers_write_identical_rows_for_the_same_team(world, monkeypatch, settings):
    """The same team, preferences, channels and instant through the set-based statement and
    through `bulk_create`: every column of every notification and delivery is the same."""
    settings.NOTIFICATIONS_RATE_LIMIT_COUNT = 2
    tenant = world.tenant("a")
    people = [UserFactory(username=f"same-{i}") for i in range(24)]
    for u in people:
        MembershipFactory(user=u, organization=tenant, role="operator")
    shapes = [
        {"channels": ["in_app"]},
        {"channels": ["in_app", "email"], "min_priority": {"email": "urgent"}},
        {"channels": ["in_app", "email"], "quiet_start": time(0, 0), "quiet_end": time(23, 59, 59)},
        {"channels": ["email"], "digest": "hourly"},
        {"channels": ["email", "email"], "digest": "daily", "timezone": "Pacific/Auckland"},
        {"channels": ["in_app", "email", "webhook"], "timezone": "Europe/Berlin"},
    ]
    for u, shape in zip(people, shapes, strict=False):
        PreferenceFactory(tenant=tenant, user=u, **shape)
    PreferenceFactory(tenant=tenant, user=people[6], notification_type="deploy_finished", channels=["in_app", "webhook"])
    PreferenceFactory(tenant=tenant, user=people[6], channels=["email"])
    for u in (people[5], people[6]):
        ChannelConfigFactory(tenant=tenant, user=u, name=f"hook-{u.pk}")
    ChannelConfigFactory(tenant=tenant, name="team room")
    ChannelConfigFactory(tenant=tenant, name="urgent only", min_priority="urgent")
    for _ in range(2):  # people[7] reached the rate limit
        DeliveryFactory(notification__tenant=tenant, notification__recipient=people[7], status="sent")
    spec = Spec(notification_type="deploy_finished", title="Deployed", message="v2 → prod", priority="high", action_url="/d/1",
                action_label="Open", related_entity_type="deployments.deployment", related_entity_id="7", metadata={"n": [1, "ü"], "ok": True})
    args = {"tenant": tenant, "spec": spec, "user_ids": [u.pk for u in reversed(people)], "event_id": uuid4()}
    with time_machine.travel("2026-03-29 00:30:00+00:00", tick=False):  # Berlin's DST night
        set_based = _written_by(planning.write_set_based, monkeypatch, **args)
        portable = _written_by(planning.write_with_orm, monkeypatch, **args)
    assert len(set_based[0]) == 24 and set_based[3] == len(set_based[1]) == 24 - 1 + 2 + 1 - 1
    assert all(not differing for _, differing in set_based[2])  # the returned objects are the stored rows
    assert set_based == portable


# -- once per notification and channel (kind): one unique index, notif_delivery_once ----------------
def _duplicate_raises(**row) -> bool:
    try:
        with transaction.atomic():
            DeliveryFactory(**row)
    except IntegrityError:
        return True
    return False


@pytest.mark.sqlite
def test_a_notification_has_one_delivery_per_channel_whatever_its_kind(db):
    from tests.factories.notifications import NotificationFactory

    note = NotificationFactory()
    room = ChannelConfigFactory(tenant=note.tenant)
    DeliveryFactory(notification=note, channel=room, kind="webhook")
    assert _duplicate_raises(notification=note, channel=room, kind="webhook")
    assert _duplicate_raises(notification=note, channel=room, kind="slack")  # the channel decides, not the kind
    DeliveryFactory(notification=note, channel=ChannelConfigFactory(tenant=note.tenant), kind="webhook")  # another channel
    DeliveryFactory(notification=NotificationFactory(tenant=note.tenant), channel=room, kind="webhook")  # another notification
    assert Delivery.objects.filter(channel=room).count() == 2


@pytest.mark.sqlite
def test_a_notification_has_one_channel_less_delivery_per_kind(db):
    from tests.factories.notifications import NotificationFactory

    note = NotificationFactory()
    DeliveryFactory(notification=note, kind="email")
    assert _duplicate_raises(notification=note, kind="email")
    DeliveryFactory(notification=note, kind="sms")  # another kind
    DeliveryFactory(notification=note, kind="email", channel=ChannelConfigFactory(tenant=note.tenant))  # a channel's row of that kind
    assert note.deliveries.count() == 3


@pytest.mark.sqlite
def test_digests_have_no_notification_and_are_not_limited_by_it(db):
    from tests.factories.notifications import NotificationFactory

    note = NotificationFactory()
    room = ChannelConfigFactory(tenant=note.tenant)
    for _ in range(2):
        DeliveryFactory(notification=None, tenant=note.tenant, recipient=note.recipient, kind="email")
        DeliveryFactory(notification=None, tenant=note.tenant, recipient=None, channel=room, kind="webhook")
    assert Delivery.objects.filter(notification__isnull=True).count() == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_lookups_by_notification_can_use_the_once_index(db):
    """Cascades (`notification_id IN`), the retention's in-flight check (a correlated EXISTS) and
    `notification__in=<subquery>` reach deliveries through notif_delivery_once (its leading column;
    `notification_id = x` implies its `IS NOT NULL` condition)."""
    from django.db.models import Exists, OuterRef

    in_flight = Delivery.objects.filter(notification=OuterRef("pk"))
    queries = [
        Delivery.objects.filter(notification_id__in=[1, 2, 3]),
        Notification.objects.filter(Exists(in_flight)),
        Delivery.objects.filter(notification__in=Notification.objects.filter(title="x").values("pk")),
    ]
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        for qs in queries:
            sql, params = qs.query.sql_with_params()
            cur.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(r[0] for r in cur.fetchall())
            assert "notif_delivery_once" in plan, plan
