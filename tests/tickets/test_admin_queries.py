"""The admin change page of a ticket: a small number of queries that does not grow with the
ticket's messages, attachments and timeline (permission answers are memoized per request)."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.tickets import services

MAX_QUERIES = 20


def _ticket_with(world, n: int):
    agent = world.user("a", "support_agent")
    ticket = services.ticket_create(actor=agent, subject="VPN down", message="since 9:00", target_type="platform")
    for i in range(n):
        services.ticket_reply(ticket, actor=agent, body=f"reply {i}", is_internal=bool(i % 2))
        services.ticket_attach(ticket, actor=agent, file=SimpleUploadedFile(f"log{i}.txt", b"x", content_type="text/plain"))
    return ticket


def _change_page_queries(client, ticket) -> list[str]:
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_change_page_queries_small_and_constant(world, client, django_assert_max_num_queries):
    client.force_login(world.user("a", "admin"))
    small, large = _ticket_with(world, 1), _ticket_with(world, 6)
    client.get(reverse("admin:tickets_ticket_change", args=[small.pk]))  # warm per-process caches
    few, many = _change_page_queries(client, small), _change_page_queries(client, large)
    assert few and len(few) == len(many), "\n".join(many)  # `few` empty would mean nothing was captured
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(reverse("admin:tickets_ticket_change", args=[large.pk]))


def test_permission_check_runs_once_per_action(world, client):
    client.force_login(world.user("a", "admin"))
    ticket = _ticket_with(world, 2)
    client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    sqls = _change_page_queries(client, ticket)
    assert sqls, "no queries captured: the check below would pass vacuously"
    checks = [s for s in sqls if s.startswith("SELECT 1 AS") and '"tickets_ticket"."id" =' in s]
    assert len(checks) <= 3, "\n".join(checks)  # view, change, delete at most once each
