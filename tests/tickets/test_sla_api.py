"""SLA policies and business calendars over the API: the same services as the admin, read by
staff, written by owners and admins, no delete; a policy set through the API drives the due times
of the next ticket."""

from datetime import UTC, datetime

import pytest

from apps.tickets import services
from apps.tickets.models import BusinessCalendar, SlaPolicy

CAL = "/api/v1/business-calendars/"
POL = "/api/v1/sla-policies/"


@pytest.fixture
def admin_api(world, api):
    return api.as_user(world.user("a", "admin"))


def test_calendar_and_policy_created_through_the_api_set_the_next_tickets_due_times(world, admin_api, api):
    a = world.tenant("a")
    r = admin_api.post(CAL, {"name": "Office", "timezone": "UTC", "is_default": True,
                             "working_hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                             "holidays": ["2026-12-25"]}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["tenant"] == a.slug
    calendar_id = r.json()["id"]
    r = admin_api.post(POL, {"name": "High", "priority": "high", "first_response_minutes": 60, "resolution_minutes": 240,
                             "calendar": calendar_id}, format="json")
    assert r.status_code == 201, r.content
    # Thursday 16:30 UTC: 30 business minutes left today, the rest on Friday from 09:00
    from django.utils import timezone

    thursday = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timezone, "now", lambda: thursday)
        ticket = services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m", priority="high")
    assert ticket.first_response_due_at == datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    assert ticket.resolution_due_at == datetime(2026, 12, 4, 12, 30, tzinfo=UTC)


def test_refusals_are_400s_that_say_what_to_fix(world, admin_api, api):
    bad_zone = admin_api.post(CAL, {"name": "x", "timezone": "Mars/Olympus"}, format="json")
    assert bad_zone.status_code == 400 and "time zone" in bad_zone.json()["detail"], bad_zone.content
    bad_day = admin_api.post(CAL, {"name": "x", "working_hours": {"funday": [["09:00", "17:00"]]}}, format="json")
    assert bad_day.status_code == 400 and "weekday" in bad_day.json()["detail"]
    inverted = admin_api.post(POL, {"name": "x", "priority": "low", "first_response_minutes": 500, "resolution_minutes": 100}, format="json")
    assert inverted.status_code == 400 and "first_response_minutes" in inverted.json()["errors"]
    assert admin_api.post(POL, {"name": "one", "priority": "low", "first_response_minutes": 5, "resolution_minutes": 10}, format="json").status_code == 201
    second = admin_api.post(POL, {"name": "two", "priority": "low", "first_response_minutes": 5, "resolution_minutes": 10}, format="json")
    assert second.status_code == 400, second.content  # one active policy per priority
    foreign_cal = BusinessCalendar.objects.create(tenant=world.tenant("b"), name="B office")
    cross = admin_api.post(POL, {"name": "x", "priority": "urgent", "first_response_minutes": 5, "resolution_minutes": 10,
                                 "calendar": foreign_cal.pk}, format="json")
    assert cross.status_code == 400 and "calendar" in cross.json()["errors"]
    platform = api.as_user(world.user("platform", "admin"))
    hours = {"mon": [["08:00", "12:00"]]}
    nameless = platform.post(CAL, {"name": "x", "working_hours": hours}, format="json")
    assert nameless.status_code == 400 and "tenant" in nameless.json()["errors"], nameless.content
    assert platform.post(CAL, {"name": "B hours", "tenant": world.tenant("b").slug, "working_hours": hours}, format="json").status_code == 201


def test_staff_read_managers_write_nothing_is_deleted(world, api):
    policy = SlaPolicy.objects.create(tenant=world.tenant("a"), name="Normal", priority="normal", first_response_minutes=60,
                                      resolution_minutes=480)
    agent = api.as_user(world.user("a", "support_agent"))
    assert [p["id"] for p in agent.get(POL).json()["results"]] == [policy.pk]
    assert agent.patch(f"{POL}{policy.pk}/", {"resolution_minutes": 1}, format="json").status_code == 403
    assert agent.post(POL, {"name": "x", "priority": "low", "first_response_minutes": 1, "resolution_minutes": 2}, format="json").status_code == 403
    customer_sees = api.as_user(world.user("a", "customer")).get(POL)
    assert customer_sees.status_code == 403 or customer_sees.json()["results"] == []
    admin_api = api.as_user(world.user("a", "admin"))  # the fixture's client: as_user switched it above
    assert admin_api.patch(f"{POL}{policy.pk}/", {"is_active": False}, format="json").status_code == 200
    assert admin_api.delete(f"{POL}{policy.pk}/").status_code == 405
    assert admin_api.patch(f"{POL}{policy.pk}/", {"tenant": world.tenant("b").slug}, format="json").status_code == 400
    policy.refresh_from_db()
    assert policy.is_active is False and policy.tenant == world.tenant("a")
