"""The set-based writer of the fan-out (PostgreSQL, one statement) writes the same rows as the
portable `bulk_create` one: choice values (not enum names), JSON metadata, ids that match the
returned objects, and the pending deliveries are the ones enqueued."""

from __future__ import annotations

from datetime import time

import pytest
from django.db import connection

from apps.notifications import planning, services
from apps.notifications.choices import DeliveryStatus, SuppressReason
from apps.notifications.models import Delivery, Notification
from tests.factories.notifications import PreferenceFactory


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
    assert '"notifications_delivery"."recipient_id" = ANY(%s::integer[])' in sql and list(params[0]) == list(range(1, 200))
    sql, _ = planning.ids_filter(Delivery.objects.all(), "notification_id", range(1, 200)).query.sql_with_params()
    assert "= ANY(%s::bigint[])" in sql
