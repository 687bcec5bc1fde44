"""One writer for the events outbox (apps/core/events.py): every path that writes `core_event`
rows — publish, the bulk writer, the set-based SQL fragment, alert ingestion's statement and the
tickets' SLA sweep — writes the row `publish()` writes, column for column (the columns come
from the model, so a new one is compared too)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.core import events
from apps.core.models import Event

pytestmark = pytest.mark.django_db

# set per row by its writer (identity and time); every other column must equal publish()'s
_PER_ROW = {"id", "created_at", "next_attempt_at"}


def _columns() -> list[str]:
    return [f.attname for f in Event._meta.concrete_fields if not f.generated]


def assert_written_as_publish_writes(event: Event) -> None:
    """`event` (as stored) against the row publish() writes for the same name, tenant, payload
    and actor, now."""
    event = Event.objects.get(pk=event.pk)
    with transaction.atomic():
        reference = events.publish(event.name, tenant=event.tenant_id, payload=event.payload,
                                   actor=SimpleNamespace(pk=event.actor_id) if event.actor_id else None)
    reference = Event.objects.get(pk=reference.pk)
    for field in Event._meta.concrete_fields:
        if field.attname not in _PER_ROW:
            assert getattr(event, field.attname) == getattr(reference, field.attname), field.attname
    now = timezone.now()
    assert abs(event.created_at - now) < timedelta(minutes=1), "created now"
    # due for the sweeper as long after it was written as publish()'s row
    assert abs((event.next_attempt_at - event.created_at) - (reference.next_attempt_at - reference.created_at)) < timedelta(seconds=5)


def test_publish_is_its_own_reference(world):
    assert_written_as_publish_writes(events.publish("test.outbox.one", tenant=world.tenant("a"), payload={"n": 1}))


def test_the_bulk_writer_writes_publish_rows(world):
    actor = world.user("a", "operator")
    rows = events.write_events([("test.outbox.bulk", world.tenant("a").pk, {"n": i}, actor) for i in range(3)])
    rows += events.publish_many("test.outbox.many", payloads=[{"n": 9}], tenant=world.tenant("b"))
    assert len(rows) == 4
    for row in rows:
        assert_written_as_publish_writes(row)


def test_the_set_based_fragment_lists_every_column_of_the_model():
    sql = events.insert_select_sql({"id": "s.id", "name": "s.name", "tenant_id": "s.tenant_id", "payload": "s.payload"})
    head = sql.split(")", 1)[0]
    assert head.startswith(f"INSERT INTO {Event._meta.db_table} (")
    assert [c.strip().strip('"') for c in head.split("(", 1)[1].split(",")] == [
        Event._meta.get_field(a).column for a in _columns()]
    with pytest.raises(ValueError, match="not_a_column"):
        events.insert_select_sql({"id": "1", "name": "2", "tenant_id": "3", "payload": "4", "not_a_column": "5"})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based fragment is PostgreSQL SQL")
def test_the_set_based_fragment_writes_publish_rows(world):
    import uuid

    ids = [uuid.uuid4(), uuid.uuid4()]
    sql = events.insert_select_sql({"id": "s.id", "name": "'test.outbox.sql'", "tenant_id": "s.tenant", "payload": "s.payload",
                                    "actor_id": "s.actor"})
    sql += " FROM (VALUES (%(a)s::uuid, %(t)s::bigint, '{\"n\": 1}'::jsonb, NULL::bigint),"
    sql += " (%(b)s::uuid, NULL::bigint, '{\"n\": 2}'::jsonb, %(actor)s::bigint)) AS s(id, tenant, payload, actor)"
    with connection.cursor() as cur:
        cur.execute(sql, {"a": ids[0], "b": ids[1], "t": world.tenant("a").pk, "actor": world.user("a", "operator").pk,
                          **events.insert_select_params(timezone.now())})
    for pk in ids:
        assert_written_as_publish_writes(Event.objects.get(pk=pk))


@pytest.mark.parametrize("inhibition", [False, True], ids=["one-statement", "transactional"])
def test_alert_ingestion_writes_publish_rows(world, inhibition):
    from apps.alerts.ingest import alerts_ingest
    from tests.factories.alerts import InhibitRuleFactory

    tenant = world.tenant("a")
    if inhibition:
        InhibitRuleFactory(tenant=tenant, source_matchers=[{"name": "alertname", "op": "=", "value": "Nothing"}])
    alerts = [{"labels": {"alertname": "Disk", "instance": f"h{i}", "severity": "critical"}} for i in range(2)]
    alerts_ingest(tenant_id=tenant.pk, alerts=alerts, source_name="api", actor=world.user("a", "admin"))
    assert_written_as_publish_writes(Event.objects.get(name="alert.fired"))


def test_the_sla_sweep_writes_publish_rows(world):
    from apps.tickets import services
    from tests.factories.tickets import SlaPolicyFactory
    from tests.tickets.conftest import frozen

    tenant = world.tenant("a")
    SlaPolicyFactory(tenant=tenant, priority="urgent", first_response_minutes=10, resolution_minutes=60, at_risk_percent=50)
    start = timezone.now() - timedelta(days=3)  # the sweep is given its own time, as the tests and a late beat do
    with frozen(start):
        services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m", priority="urgent")
    assert services.sla_sweep(now=start + timedelta(minutes=61))["resolution_breached"] == 1
    written = list(Event.objects.filter(name__startswith="ticket.sla_"))
    assert sorted(e.name for e in written) == ["ticket.sla_at_risk", "ticket.sla_breached", "ticket.sla_breached"]
    for event in written:
        assert_written_as_publish_writes(event)
