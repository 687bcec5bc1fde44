"""Ticket orderings (`apps/tickets/search.py`): each a total order (the id breaks ties in the same
direction, so pages never share or skip a row), priority by severity, unknown names a 400; the
admin sorts the same way."""

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from apps.tickets.models import Ticket
from apps.tickets.numbers import new_ticket_number

ALLOWED_ORDERINGS = [f"{sign}{name}" for name in ("created_at", "priority", "status", "resolution_due_at") for sign in ("", "-")]
N = 45
PAGE = 7


@pytest.fixture
def crowd(world):
    """N tickets of tenant A sharing every sort key but a few (created_at, status, due time)."""
    tenant, customer, now = world.tenant("a"), world.tenant("a-customer"), timezone.now()
    priorities = ["normal"] * 30 + ["critical", "low", "urgent", "high"] * 3 + ["normal"] * (N - 42)
    Ticket.objects.bulk_create(
        Ticket(tenant=tenant, customer=customer, number=new_ticket_number(), subject=f"same {i}", origin_type="customer",
               target_type="tenant", priority=priorities[i], created_at=now, status="open" if i % 9 else "waiting",
               resolution_due_at=None if i % 4 == 0 else now)
        for i in range(N)
    )
    return set(Ticket.objects.filter(tenant=tenant).values_list("pk", flat=True))


def _walk_api(api, user, ordering):
    client, seen, page = api.as_user(user), [], 1
    while True:
        r = client.get("/api/v1/tickets/", {"ordering": ordering, "page": page, "page_size": PAGE})
        assert r.status_code == 200, r.content
        body = r.json()
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            return seen
        page += 1


def _walk_admin(client, user, column_index):
    client.force_login(user)
    seen, page = [], 1
    while True:
        r = client.get(reverse("admin:tickets_ticket_changelist"), {"o": column_index, "p": page})
        assert r.status_code == 200
        cl = r.context["cl"]
        seen += [t.pk for t in cl.result_list]
        if page >= cl.paginator.num_pages:
            return seen
        page += 1


@pytest.mark.parametrize("ordering", ALLOWED_ORDERINGS)
def test_every_api_ordering_is_total(world, api, crowd, ordering):
    seen = _walk_api(api, world.user("a", "support_agent"), ordering)
    assert len(seen) == len(set(seen)) and set(seen) == crowd


@pytest.mark.parametrize("column", ["status", "priority_label", "resolution_due_at", "created_at"])
@pytest.mark.parametrize("sign", ["", "-"])
def test_every_admin_ordering_is_total(world, client, crowd, settings, column, sign):
    from apps.tickets.admin import TicketAdmin

    settings.DEBUG = False
    TicketAdmin.list_per_page = PAGE
    try:
        index = TicketAdmin.list_display.index(column) + 1
        seen = _walk_admin(client, world.user("a", "admin"), f"{sign}{index}")
    finally:
        TicketAdmin.list_per_page = 50
    assert len(seen) == len(set(seen)) and set(seen) == crowd


def test_priority_orders_by_severity(world, api, crowd):
    r = api.as_user(world.user("a", "support_agent")).get("/api/v1/tickets/", {"ordering": "-priority", "page_size": 500})
    order = [row["priority"] for row in r.json()["results"]]
    severity = ["low", "normal", "high", "urgent", "critical"]
    assert order == sorted(order, key=severity.index, reverse=True)
    assert order[0] == "critical" and order[-1] == "low"


@pytest.mark.parametrize("bad", ["subject", "priority,created_at", "-", "tenant__name"])
def test_unknown_ordering_is_a_400_naming_the_allowed(world, api, bad):
    r = api.as_user(world.user("a", "support_agent")).get("/api/v1/tickets/", {"ordering": bad})
    assert r.status_code == 400
    text = r.content.decode()
    assert "ordering" in text and all(name in text for name in ("created_at", "-priority", "status", "resolution_due_at"))


INDEX_OF = {"created_at": "tickets_tenant_created_id_idx", "priority": "tickets_tenant_prio_id_idx",
            "status": "tickets_tenant_status_id_idx", "resolution_due_at": "tickets_tenant_res_due_id_idx"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="index plans are PostgreSQL's")
@pytest.mark.parametrize("ordering", ALLOWED_ORDERINGS)
def test_every_ordering_is_one_index_scan_without_a_sort(world, crowd, ordering):
    from apps.tickets.search import ordering_for

    user = world.user("a", "support_agent")
    qs = Ticket.objects.visible_to(user).select_related("tenant", "customer", "partner", "assignee")
    for key, n in (("a", 300), ("b", 6000)):  # a small tenant beside a large one, as in issue 24
        Ticket.objects.bulk_create(
            Ticket(tenant=world.tenant(key), number=new_ticket_number(), subject=f"more {i}", origin_type="tenant",
                   target_type="platform", priority=("low", "normal", "high")[i % 3], status=("open", "closed")[i % 2],
                   resolution_due_at=timezone.now() if i % 2 else None)
            for i in range(n)
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE tickets_ticket")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        plan = qs.order_by(*ordering_for(ordering))[:50].explain()
    assert f"using {INDEX_OF[ordering.lstrip('-')]} on tickets_ticket" in plan, plan
    assert "Sort" not in plan, plan
