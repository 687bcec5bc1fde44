"""SLA clocks: business hours with holidays, pause on waiting, priority change, first response,
and the set-based sweep (idempotent, with events and notify blocks). Time is frozen."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from apps.core.models import Event
from apps.tickets import services
from apps.tickets.models import BusinessCalendar, Ticket, TicketEvent
from apps.tickets.sla import Calendar, add_business_seconds, business_seconds_between
from tests.factories.tickets import SlaPolicyFactory

from .conftest import frozen

BERLIN = ZoneInfo("Europe/Berlin")
MON_9 = datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN)  # a Monday


def _cal(tenant, **kw):
    return BusinessCalendar.objects.create(
        tenant=tenant, name="office", timezone="Europe/Berlin", is_default=True,
        working_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}, **kw,
    )


def test_business_time_skips_nights_weekends_and_holidays(world):
    cal = Calendar.from_model(_cal(world.tenant("a"), holidays=["2026-03-09"]))
    fri_16 = datetime(2026, 3, 6, 16, 0, tzinfo=BERLIN)
    # 2 working hours from Friday 16:00: 1 h Friday, weekend skipped, Monday 9th is a holiday
    assert add_business_seconds(fri_16, 2 * 3600, cal) == datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN)
    assert business_seconds_between(fri_16, datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN), cal) == 2 * 3600
    # starting at night counts from the next morning
    assert add_business_seconds(datetime(2026, 3, 2, 22, 0, tzinfo=BERLIN), 1800, cal) == datetime(2026, 3, 3, 9, 30, tzinfo=BERLIN)


def test_due_times_in_business_hours_and_recomputed_on_priority_change(world):
    tenant = world.tenant("a")
    _cal(tenant)
    SlaPolicyFactory(tenant=tenant, priority="high", first_response_minutes=60, resolution_minutes=480)
    SlaPolicyFactory(tenant=tenant, priority="critical", first_response_minutes=15, resolution_minutes=120)
    with frozen(MON_9.replace(hour=16)):
        t = services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m", priority="high")
    assert t.first_response_due_at == MON_9.replace(hour=17)
    assert t.resolution_due_at == MON_9.replace(day=3, hour=16)  # 1 h Monday + 7 h Tuesday
    with frozen(MON_9.replace(hour=16, minute=30)):
        t = services.ticket_update(t, actor=world.user("a", "support_agent"), priority="critical")
    assert t.first_response_due_at == MON_9.replace(hour=16, minute=15)
    assert t.resolution_due_at == MON_9.replace(day=3, hour=10)
    assert t.timeline.filter(kind="priority_changed").exists()


def test_tenant_settings_provide_defaults_without_policy(world):
    tenant = world.tenant("b")
    tenant.settings = {"sla": {"normal": {"first_response_minutes": 30, "resolution_minutes": 240}}}
    tenant.save()
    with frozen(MON_9):
        t = services.ticket_create(actor=world.user("b", "customer"), subject="s", message="m")
    assert t.sla_policy is None
    assert t.first_response_due_at == MON_9 + timedelta(minutes=30)  # 24x7 without a calendar


def test_waiting_pauses_clock_and_customer_reply_resumes_it(world):
    tenant = world.tenant("a")
    _cal(tenant)
    SlaPolicyFactory(tenant=tenant, priority="normal", first_response_minutes=60, resolution_minutes=480)
    agent, customer = world.user("a", "support_agent"), world.user("a", "customer")
    with frozen(MON_9):
        t = services.ticket_create(actor=customer, subject="s", message="m")
    assert t.resolution_due_at == MON_9.replace(hour=17)
    with frozen(MON_9.replace(hour=10)):
        services.ticket_reply(t, actor=agent, body="Which router model?")  # first response
        t = services.ticket_change_status(t, actor=agent, status="waiting")
    t.refresh_from_db()
    assert t.first_responded_at == MON_9.replace(hour=10)
    # paused for 3 working hours (10:00 → 13:00); the customer's portal reply resumes the clock
    with frozen(MON_9.replace(hour=13)):
        services.ticket_reply(t, actor=customer, body="It is a FritzBox")
    t.refresh_from_db()
    assert t.status == "open" and t.sla_paused_at is None and t.sla_paused_seconds == 3 * 3600
    assert t.resolution_due_at == MON_9.replace(day=3, hour=12)  # 17:00 + 3 h → Tuesday 12:00
    # the sweep ignores a paused ticket even after its due time
    with frozen(MON_9.replace(hour=14)):
        services.ticket_change_status(t, actor=agent, status="waiting")
    assert services.sla_sweep(now=MON_9.replace(day=20))["resolution_breached"] == 0


def test_sweep_flags_once_and_publishes_events_with_notify(world):
    tenant = world.tenant("a")
    SlaPolicyFactory(tenant=tenant, priority="urgent", first_response_minutes=10, resolution_minutes=60, at_risk_percent=50)
    agent = world.user("a", "support_agent")
    with frozen(MON_9):
        t = services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m", priority="urgent")
        services.ticket_assign(t, actor=agent, assignee=agent)
    assert services.sla_sweep(now=MON_9 + timedelta(minutes=4)) == {"at_risk": 0, "first_response_breached": 0, "resolution_breached": 0}
    assert services.sla_sweep(now=MON_9 + timedelta(minutes=6))["at_risk"] == 1
    risk = Event.objects.get(name="ticket.sla_at_risk")
    assert risk.payload["sla_target"] == "first_response" and risk.payload["notify"]["user_ids"] == [agent.pk]
    assert {"priority", "status", "assignee_id", "tenant", "number", "url", "title"} <= set(risk.payload)
    counts = services.sla_sweep(now=MON_9 + timedelta(minutes=61))
    assert counts == {"at_risk": 0, "first_response_breached": 1, "resolution_breached": 1}
    again = services.sla_sweep(now=MON_9 + timedelta(minutes=90))
    assert again == {"at_risk": 0, "first_response_breached": 0, "resolution_breached": 0}
    breaches = Event.objects.filter(name="ticket.sla_breached")
    assert sorted(e.payload["sla_target"] for e in breaches) == ["first_response", "resolution"]
    assert all(e.payload["notify"]["priority"] == "urgent" and e.tenant_id == tenant.pk for e in breaches)
    t.refresh_from_db()
    assert t.first_response_breached and t.resolution_breached and t.sla_breached_at == MON_9 + timedelta(minutes=61)
    assert TicketEvent.objects.filter(ticket=t, kind="sla_breached").count() == 2


def test_first_response_resets_at_risk_to_resolution_target(world):
    SlaPolicyFactory(tenant=world.tenant("a"), priority="normal", first_response_minutes=10, resolution_minutes=100, at_risk_percent=50)
    with frozen(MON_9):
        t = services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m")
    services.sla_sweep(now=MON_9 + timedelta(minutes=6))
    with frozen(MON_9 + timedelta(minutes=7)):
        services.ticket_reply(t, actor=world.user("a", "support_agent"), body="on it")
    t.refresh_from_db()
    assert not t.sla_at_risk and t.sla_warn_at == MON_9 + timedelta(minutes=50) and not t.first_response_breached
    assert services.sla_sweep(now=MON_9 + timedelta(minutes=51))["at_risk"] == 1
    assert Event.objects.filter(name="ticket.sla_at_risk").order_by("created_at").last().payload["sla_target"] == "resolution"


@pytest.mark.django_db
def test_sla_sweep_command_and_task(world, capsys):
    SlaPolicyFactory(tenant=world.tenant("a"), priority="normal", first_response_minutes=1, resolution_minutes=2)
    with frozen(MON_9):
        services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m")
    Ticket.objects.update(first_response_due_at=MON_9, resolution_due_at=MON_9, sla_warn_at=MON_9)
    call_command("sla_sweep")
    assert "resolution_breached=1" in capsys.readouterr().out
    from apps.tickets.tasks import sla_sweep_task

    assert sla_sweep_task.delay().get() == {"at_risk": 0, "first_response_breached": 0, "resolution_breached": 0}
