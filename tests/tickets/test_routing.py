"""The routing matrix, every pair both ways, through the API (origin never from the request)."""

import pytest
from django.urls import reverse

from apps.core.models import Event
from apps.tickets.choices import ROUTES, ActorType
from apps.tickets.models import Ticket

PAIRS = [(o, t) for o in ActorType.values for t in ActorType.values]


@pytest.mark.parametrize(("origin", "target"), PAIRS, ids=[f"{o}->{t}" for o, t in PAIRS])
def test_routing_matrix(origin, target, world, api, actors):
    client = api.as_user(actors[origin])
    payload = {"subject": "Internet down", "message": "Since yesterday", "priority": "high", "target_type": target,
               "origin_type": "platform", "metadata": {"customer_id": "CUST-1"}}
    if origin == ActorType.PLATFORM:
        payload["tenant"] = "tenant-a"
    response = client.post(reverse("ticket-list"), payload, format="json")
    if target in ROUTES[origin]:
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["origin_type"] == origin  # from the membership, not the request's origin_type
        assert body["target_type"] == target
        assert body["ticket_number"].startswith("TCK-") and len(body["ticket_number"]) == 12
        assert body["status"] == "open" and body["messages"][0]["body"] == "Since yesterday"
        ticket = Ticket.objects.get(pk=body["id"])
        assert ticket.tenant == world.tenant("a")
        if target == ActorType.PARTNER or origin == ActorType.PARTNER:
            assert ticket.partner == world.orgs["partner"]
            assert Event.objects.filter(name="ticket.escalated_to_partner").exists() == (target == ActorType.PARTNER)
        assert Event.objects.filter(name="ticket.created", payload__id=ticket.pk).exists()
    else:
        assert response.status_code == 400, response.content
        detail = response.json()["detail"]
        assert "Allowed targets" in detail and all(t in detail for t in ROUTES[origin])
        assert not Ticket.objects.exists()


def test_customer_ticket_belongs_to_their_org(world, api):
    client = api.as_user(world.user("a", "customer"))
    body = client.post(reverse("ticket-list"), {"subject": "s", "message": "m"}, format="json").json()
    ticket = Ticket.objects.get(pk=body["id"])
    assert ticket.customer == world.orgs["a-customer"] and ticket.origin_type == "customer" and ticket.target_type == "tenant"


def test_platform_must_name_tenant(world, api):
    client = api.as_user(world.user("platform", "admin"))
    response = client.post(reverse("ticket-list"), {"subject": "s", "message": "m", "target_type": "tenant"}, format="json")
    assert response.status_code == 400 and "tenant" in response.json()["errors"]


def test_viewer_cannot_open_tickets(world, api):
    response = api.as_user(world.user("a", "viewer")).post(reverse("ticket-list"), {"subject": "s", "message": "m", "target_type": "platform"}, format="json")
    assert response.status_code == 403
