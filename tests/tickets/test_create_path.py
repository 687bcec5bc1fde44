"""The create path kept fast (bench/bench_tickets_create.py): the answer built from the rows just
written equals what GET /tickets/{id}/ shows to the same user, the queries stay few, the cached
tenant configuration follows every change and works without Redis, and a taken number is
retried without a savepoint."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.choices import Role
from apps.core.models import Event
from apps.tickets import numbers, services
from apps.tickets.models import BusinessCalendar, SlaPolicy, Ticket
from tests.factories import MembershipFactory, UserFactory
from tests.factories.tickets import SlaPolicyFactory, TicketFactory

from .conftest import frozen

# also run on SQLite (`make test` runs the `sqlite` marker again on the embedded default)
pytestmark = pytest.mark.sqlite

BERLIN = ZoneInfo("Europe/Berlin")
MON_16 = datetime(2026, 3, 2, 16, 0, tzinfo=BERLIN)  # a Monday, one working hour left


def _office(tenant):
    return BusinessCalendar.objects.create(
        tenant=tenant, name="office", timezone="Europe/Berlin", is_default=True,
        working_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    )


def _assign(tenant, mode="least_loaded"):
    for i in range(2):
        MembershipFactory(user=UserFactory(username=f"agent-{i}"), organization=tenant, role=Role.SUPPORT_AGENT)
    tenant.settings = {"tickets": {"assignment": mode}}
    tenant.save()


CASES = {
    # who, payload, X-Organization
    "customer with attachment": ("a", "customer", {"subject": "Router", "message": "Blinks red", "priority": "high",
                                                   "metadata": '{"site": "HQ"}', "tags": "wifi,hq"}, True),
    "tenant staff to platform": ("a", "support_agent", {"subject": "Billing", "message": "Export fails", "target_type": "platform",
                                                         "tags": ["billing"]}, False),
    "tenant staff to partner": ("a", "operator", {"subject": "Field work", "message": "Cable cut", "target_type": "partner"}, False),
    "partner to tenant": ("partner", "support_agent", {"subject": "Visit", "message": "Done", "target_type": "tenant"}, False),
    "platform to partner": ("platform", "admin", {"subject": "Audit", "message": "Please check", "target_type": "partner",
                                                  "tenant": "tenant-a", "partner": "partner-p"}, False),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_create_answer_equals_the_detail_view(case, world, api):
    tenant = world.tenant("a")
    _office(tenant)
    SlaPolicyFactory(tenant=tenant, priority="high", first_response_minutes=60, resolution_minutes=480)
    _assign(tenant)
    key, role, payload, multipart = CASES[case]
    client = api.as_user(world.user(key, role))
    if multipart:
        payload = {**payload, "attachments": [SimpleUploadedFile("diagnostics.log", b"x" * 50)]}
    with frozen(MON_16):
        created = client.post(reverse("ticket-list"), payload, format="multipart" if multipart else "json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body == client.get(reverse("ticket-detail", args=[body["id"]])).json()
    assert {"id", "ticket_number", "status", "origin_type", "target_type", "created_at", "messages"} <= body.keys()
    if key == "a" and role == "customer":
        # due times in business hours; the customer sees no assignment entry, staff do
        assert body["first_response_due_at"] == "2026-03-02T16:00:00Z" and body["resolution_due_at"] == "2026-03-03T15:00:00Z"
        assert body["assignee"] and [e["kind"] for e in body["timeline"]] == ["created"] and len(body["attachments"]) == 1
        staff = api.as_user(world.user("a", "admin")).get(reverse("ticket-detail", args=[body["id"]])).json()
        assert [e["kind"] for e in staff["timeline"]] == ["attachment", "created", "assigned"]


def test_create_takes_few_queries(world, api, django_assert_max_num_queries):
    tenant = world.tenant("a")
    _office(tenant)
    SlaPolicyFactory(tenant=tenant, priority="normal")
    client = api.as_user(world.user("a", "customer"))
    url = reverse("ticket-list")
    assert client.post(url, {"subject": "s", "message": "m"}, format="json").status_code == 201  # fills the caches
    # user, memberships; savepoint (the test's transaction), ticket, message, timeline, outbox, release
    with django_assert_max_num_queries(8):
        assert client.post(url, {"subject": "s", "message": "m"}, format="json").status_code == 201
    _assign(tenant)
    assert client.post(url, {"subject": "s", "message": "m"}, format="json").status_code == 201
    # + assignment lock, the agents with their load, the ticket's assignee, the agent's last assignment
    with django_assert_max_num_queries(12):
        assert client.post(url, {"subject": "s", "message": "m"}, format="json").json()["assignee"]
    assert Event.objects.filter(name="ticket.created").count() == 4
    assert Event.objects.filter(name="ticket.assigned").count() == 2


def test_cached_tenant_configuration_follows_changes(world):
    tenant = world.tenant("a")
    customer = world.user("a", "customer")

    def create(priority="high"):
        with frozen(MON_16):
            return services.ticket_create(actor=customer, subject="s", message="m", priority=priority)

    assert create().resolution_due_at is None  # no policy, no defaults: no SLA
    cal = _office(tenant)
    policy = SlaPolicyFactory(tenant=tenant, priority="high", first_response_minutes=60, resolution_minutes=480)
    t = create()
    assert (t.sla_policy_id, t.resolution_due_at) == (policy.pk, datetime(2026, 3, 3, 16, 0, tzinfo=BERLIN))
    policy.resolution_minutes = 120
    policy.save()
    assert create().resolution_due_at == datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN)
    cal.working_hours = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    cal.save()
    assert create().resolution_due_at == datetime(2026, 3, 2, 18, 0, tzinfo=BERLIN)
    policy.delete()
    tenant.settings = {"sla": {"high": {"first_response_minutes": 30, "resolution_minutes": 60}}}
    tenant.save()
    t = create()
    assert (t.sla_policy_id, t.resolution_due_at) == (None, datetime(2026, 3, 2, 17, 0, tzinfo=BERLIN))
    _assign(tenant, "round_robin")
    assert create().assignee_id is not None


def test_create_works_without_redis(world, api, settings):
    # a Redis cache that cannot be reached (also on the SQLite run, whose default is the file cache)
    settings.CACHES = {"default": {"BACKEND": "apps.core.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    tenant = world.tenant("a")
    _office(tenant)
    SlaPolicyFactory(tenant=tenant, priority="high", first_response_minutes=60, resolution_minutes=480)
    client = api.as_user(world.user("a", "customer"))
    for _ in range(2):  # every read misses: the configuration comes from PostgreSQL each time
        with frozen(MON_16):
            r = client.post(reverse("ticket-list"), {"subject": "s", "message": "m", "priority": "high"}, format="json")
        assert r.status_code == 201, r.content
        assert r.json()["resolution_due_at"] == "2026-03-03T15:00:00Z"


def test_a_taken_number_is_retried(world, monkeypatch):
    taken = TicketFactory(tenant=world.tenant("a")).number
    codes = iter([taken, taken, "TCK-FREE2345"])
    monkeypatch.setattr(services, "new_ticket_number", lambda: next(codes))
    monkeypatch.setattr(numbers, "new_ticket_number", lambda: next(codes))
    t = services.ticket_create(actor=world.user("a", "customer"), subject="s", message="m")
    assert t.number == "TCK-FREE2345"
    assert Ticket.objects.filter(number="TCK-FREE2345").get().messages.count() == 1
    assert Event.objects.filter(name="ticket.created").count() == 1
    assert SlaPolicy.objects.count() == 0
