"""The ticket list's read path (apps/tickets/api/serializers.py `ticket_rows`/`ticket_list_data`,
docs/api-performance.md): its answer equals TicketSerializer's for every kind of row and reader,
with and without filters, searching, ordering and paging, and the filter backend's shortcut
(no filter parameter: no filterset) answers what the filterset would."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from apps.core.api.filters import PortalFilterBackend, runs_when_empty
from apps.tickets.api.filters import TicketFilter
from apps.tickets.api.serializers import TicketSerializer, ticket_list_data, ticket_rows
from apps.tickets.api.views import TicketViewSet
from apps.tickets.models import Ticket
from tests.factories.tickets import TicketFactory


@pytest.fixture
def tickets(world):
    tenant = world.tenant("a")
    now = timezone.now()
    agent = world.user("a", "support_agent")
    rows = [
        TicketFactory(tenant=tenant, subject="Plain"),
        TicketFactory(
            tenant=tenant,
            customer=world.orgs["a-customer"],
            subject="From the customer",
            priority="high",
            origin_type="customer",
            target_type="tenant",
            tags=["wifi", "vip"],
            assignee=agent,
        ),
        TicketFactory(
            tenant=tenant,
            partner=world.orgs["partner"],
            subject="Routed",
            target_type="partner",
            escalation_level=2,
            first_response_due_at=now + timedelta(hours=1),
            resolution_due_at=now + timedelta(days=1, microseconds=7),
            first_responded_at=now,
            sla_at_risk=True,
        ),
        TicketFactory(
            tenant=tenant,
            subject="Done",
            status="resolved",
            resolved_at=now - timedelta(minutes=5),
            first_response_breached=True,
            resolution_breached=True,
            metadata={"site": "HQ"},
        ),
        TicketFactory(tenant=world.tenant("b"), subject="Other tenant"),
    ]
    return rows


def _serialized(client_user, queryset):
    request = APIRequestFactory().get("/")
    request.user = client_user
    return TicketSerializer(queryset, many=True, context={"request": request}).data


@pytest.mark.parametrize("who", [("a", "admin"), ("a", "customer"), ("partner", "support_agent"), ("platform", "admin")])
def test_rows_map_to_what_the_serializer_gives(who, world, tickets):
    user = world.user(*who)
    qs = (
        Ticket.objects.visible_to(user).select_related("tenant", "customer", "partner", "assignee").order_by("-created_at", "-id")
    )
    expected = _serialized(user, qs)
    assert ticket_list_data(ticket_rows(qs)) == expected
    assert expected, "the reader sees some tickets"


QUERIES = [
    "",
    "?page_size=2",
    "?page_size=2&page=2",
    "?status=resolved",
    "?priority=high&tag=vip",
    "?search=Routed",
    "?ordering=priority",
    "?ordering=-resolution_due_at",
    "?breached=false&ordering=status",
]


@pytest.mark.parametrize("query", QUERIES)
def test_list_answer_equals_the_serializer(query, world, api, tickets):
    user = world.user("a", "admin")
    response = api.as_user(user).get(reverse("ticket-list") + query)
    assert response.status_code == 200, response.content
    body = response.json()
    by_id = {t["id"]: t for t in _serialized(user, Ticket.objects.visible_to(user))}
    assert body["results"], query
    assert body["results"] == [by_id[row["id"]] for row in body["results"]]
    assert set(body["results"][0]) == set(TicketSerializer.Meta.fields)


def test_filter_shortcut_only_without_filter_parameters(world, api, tickets):
    assert not runs_when_empty(TicketFilter)
    user = world.user("a", "admin")
    client = api.as_user(user)
    everything = client.get(reverse("ticket-list") + "?page_size=50&ordering=created_at").json()["results"]
    assert len(everything) == 4
    assert [t["subject"] for t in client.get(reverse("ticket-list") + "?status=resolved").json()["results"]] == ["Done"]
    bad = client.get(reverse("ticket-list") + "?status=bogus")
    assert bad.status_code == 400 and "allowed values" in bad.content.decode()


def test_a_required_filter_still_runs_without_parameters():
    import django_filters

    class Needs(django_filters.FilterSet):
        status = django_filters.CharFilter(required=True)

        class Meta:
            model = Ticket
            fields = ["status"]

    assert runs_when_empty(Needs)

    class Colliding(django_filters.FilterSet):
        page = django_filters.CharFilter(field_name="status")

        class Meta:
            model = Ticket
            fields = ["page"]

    assert runs_when_empty(Colliding)
    assert isinstance(TicketViewSet.filter_backends[0](), PortalFilterBackend)
