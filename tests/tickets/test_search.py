"""Ticket search (`apps/tickets/search.py`): a number in any case found exactly through the unique
index, a phrase in the subject or a message through trigram indexes, ranked, the same rows in the
API and the admin."""

import pytest
from django.db import connection, transaction
from django.urls import reverse

from apps.tickets import services
from apps.tickets.models import Ticket, TicketMessage
from apps.tickets.numbers import new_ticket_number
from apps.tickets.search import search_tickets


def _open(world, subject, message="please help", *, actor=None):
    actor = actor or world.user("a", "customer")
    return services.ticket_create(actor=actor, subject=subject, message=message, target_type="tenant")


def _api_ids(api, user, term, **params):
    r = api.as_user(user).get("/api/v1/tickets/", {"search": term, **params})
    assert r.status_code == 200, r.content
    return [row["id"] for row in r.json()["results"]]


def _admin_ids(client, user, term):
    client.force_login(user)
    r = client.get(reverse("admin:tickets_ticket_changelist"), {"q": term})
    assert r.status_code == 200
    return [t.pk for t in r.context["cl"].result_list]


@pytest.fixture
def tickets(world):
    agent = world.user("a", "support_agent")
    t = {
        "vpn": _open(world, "VPN down in Berlin", "since 9:00"),
        "printer": _open(world, "Printer jam", "tray 2 is stuck"),
        "exact": _open(world, "vpn"),
        "starts": _open(world, "VPN client update"),
        "in_message": _open(world, "Cannot log in", "the vpn drops every hour"),
        "note_only": _open(world, "Mail bounces", "nothing else"),
    }
    services.ticket_reply(t["note_only"], actor=agent, body="customer is on an old vpn profile", is_internal=True)
    t["mentions"] = _open(world, f"Follow-up to {t['printer'].number}")
    t["other_tenant"] = _open(world, "VPN down in Hamburg", actor=world.user("b", "customer"))
    return t


@pytest.mark.parametrize("typed", [str.lower, str.upper, lambda n: f"  {n.swapcase()} "])
def test_number_search_is_case_insensitive_and_exact(world, api, tickets, typed):
    printer = tickets["printer"]
    assert _api_ids(api, world.user("a", "support_agent"), typed(printer.number)) == [printer.pk]


def test_partial_number_is_not_a_number_match(world, api, tickets):
    partial = tickets["printer"].number[:-1]
    assert _api_ids(api, world.user("a", "support_agent"), partial) == [tickets["mentions"].pk]


def test_phrase_in_subject_or_message_ranked(world, api, tickets):
    ids = _api_ids(api, world.user("a", "support_agent"), "VPN")
    # subject equal, starts with (newest first among equals), contains, then a message only
    t = tickets
    assert ids == [t["exact"].pk, t["starts"].pk, t["vpn"].pk, t["note_only"].pk, t["in_message"].pk]


def test_customer_does_not_find_tickets_by_internal_notes(world, api, tickets):
    ids = _api_ids(api, world.user("a", "customer"), "old vpn profile")
    assert ids == []
    assert _api_ids(api, world.user("a", "support_agent"), "old vpn profile") == [tickets["note_only"].pk]


def test_admin_and_api_return_the_same_rows(world, api, client, tickets):
    admin = world.user("a", "admin")
    for term in ("vpn", tickets["printer"].number.lower(), "tray 2", "nothing matches this"):
        assert _admin_ids(client, admin, term) == _api_ids(api, admin, term), term


def test_search_with_an_ordering_keeps_the_ordering(world, api, tickets):
    ids = _api_ids(api, world.user("a", "support_agent"), "vpn", ordering="created_at")
    t = tickets
    assert ids == [t["vpn"].pk, t["exact"].pk, t["starts"].pk, t["in_message"].pk, t["note_only"].pk]


def _bulk(world, n: int) -> None:
    """n more tickets of tenant A with a message each, analyzed, so the planner weighs real tables."""
    tenant, customer = world.tenant("a"), world.tenant("a-customer")
    rows = Ticket.objects.bulk_create(
        Ticket(tenant=tenant, customer=customer, number=new_ticket_number(), subject=f"Routine check {i}",
               origin_type="customer", target_type="tenant") for i in range(n)
    )
    TicketMessage.objects.bulk_create(TicketMessage(ticket=t, author_type="customer", body=f"all fine on host {i}") for i, t in enumerate(rows))
    with connection.cursor() as cur:
        cur.execute("ANALYZE tickets_ticket")
        cur.execute("ANALYZE tickets_ticketmessage")


def _plan(qs) -> str:
    # at a few thousand rows a sequential scan still wins; forbid it to see which index serves
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        return qs.explain()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="index plans are PostgreSQL's")
def test_explain_shows_the_indexes(world, tickets):
    _bulk(world, 3000)
    user = world.user("a", "support_agent")
    scoped = Ticket.objects.visible_to(user)
    number_plan = _plan(search_tickets(scoped, tickets["printer"].number.lower(), user=user))
    # the unique constraint's index or Django's pattern-ops twin of it: plain equality either way
    assert "Index Scan using tickets_ticket_number_" in number_plan, number_plan
    assert "Index Cond: ((number)::text = " in number_plan, number_plan
    assert "upper" not in number_plan.lower(), number_plan
    text_plan = _plan(search_tickets(scoped, "vpn drops", user=user))
    assert "Bitmap Index Scan on tickets_subject_trgm_idx" in text_plan, text_plan
    assert "Bitmap Index Scan on tickets_message_body_trgm_idx" in text_plan, text_plan


def test_nul_in_the_term_is_ignored(world, api, client, tickets):
    # DRF's SearchFilter drops NUL characters; passed on, PostgreSQL refuses the term (a 400)
    admin = world.user("a", "admin")
    assert _api_ids(api, admin, "\x00Printer jam") == [tickets["printer"].pk]
    client.force_login(admin)  # the admin's search form refuses it with a message: a page, not a 500
    assert client.get(reverse("admin:tickets_ticket_changelist"), {"q": "\x00Printer jam"}).status_code == 200
