"""Every row reachable (issue 24.3): the ticket list pages by an opaque, signed cursor through a
tenant larger than the old 10,000-row cap in every allowed ordering (no id on two pages, none
missed, back again by `previous`); a tampered cursor is a 400; the queries do not grow with the
page size; `?page=N` and the admin changelist serve pages past the capped count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.tickets.models import Ticket
from apps.tickets.numbers import new_ticket_number
from apps.tickets.pagination import COUNT_CAP
from tests.tickets.test_ordering import ALLOWED_ORDERINGS

BIG = COUNT_CAP + 120


@pytest.fixture
def big(world):
    """BIG tickets of tenant A, sort keys heavily tied (10 timestamps, 3 priorities, NULL due times)."""
    tenant, now = world.tenant("a"), timezone.now()
    Ticket.objects.bulk_create(
        (
            Ticket(
                tenant=tenant,
                number=new_ticket_number(),
                subject=f"t{i}",
                origin_type="tenant",
                target_type="platform",
                priority=("low", "normal", "critical")[i % 3],
                status=("open", "closed", "waiting")[i % 3],
                created_at=now - timezone.timedelta(minutes=i % 10),
                resolution_due_at=None if i % 4 == 0 else now,
            )
            for i in range(BIG)
        ),
        batch_size=2000,
    )
    return set(Ticket.objects.filter(tenant=tenant).values_list("pk", flat=True))


def _walk(client, params, link="next", start=None):
    pages, url, query = [], start or "/api/v1/tickets/", dict(params)
    while url:
        r = client.get(url, query)
        assert r.status_code == 200, r.content
        body = r.json()
        assert "count" not in body
        pages.append([row["id"] for row in body["results"]])
        url, query = body[link], {}
        if len(pages) > 10 * BIG:
            raise AssertionError("the walk does not end")
    return pages, body


def test_cursor_reaches_every_row_past_the_old_cap_in_every_ordering(world, api, big):
    client = api.as_user(world.user("a", "support_agent"))
    for ordering in [None, *ALLOWED_ORDERINGS]:
        params = {"page_size": 500, **({"ordering": ordering} if ordering else {})}
        pages, last = _walk(client, params)
        seen = [pk for page in pages for pk in page]
        assert len(seen) == len(set(seen)) == BIG and set(seen) == big, ordering
        # and back from the last page by `previous`: the same pages in reverse
        back, _ = _walk(client, {}, link="previous", start=last["previous"]) if last["previous"] else ([], None)
        assert back == pages[-2::-1], ordering


def test_cursor_walk_filters_and_searches(world, api, big):
    client = api.as_user(world.user("a", "support_agent"))
    pages, _ = _walk(client, {"status": "open", "priority": "critical", "page_size": 300, "ordering": "-resolution_due_at"})
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) == Ticket.objects.filter(pk__in=big, status="open", priority="critical").count()
    pages, _ = _walk(client, {"search": "t1", "page_size": 200})  # ranked: -search_rank, -created_at, -id
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) == Ticket.objects.filter(pk__in=big, subject__icontains="t1").count()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),  # the signature altered
        lambda c: "x" + c,
        lambda c: "garbage",
        lambda c: "\x00",
    ],
)
def test_a_tampered_cursor_is_a_400(world, api, big, mangle):
    from urllib.parse import parse_qs, urlparse

    client = api.as_user(world.user("a", "support_agent"))
    nxt = client.get("/api/v1/tickets/", {"page_size": 5}).json()["next"]
    cursor = parse_qs(urlparse(nxt).query)["cursor"][0]
    r = client.get("/api/v1/tickets/", {"page_size": 5, "cursor": mangle(cursor)})
    assert r.status_code == 400, r.content
    assert "cursor" in r.json()["errors"]


def test_a_cursor_of_another_ordering_is_a_400(world, api, big):
    client = api.as_user(world.user("a", "support_agent"))
    nxt = client.get("/api/v1/tickets/", {"page_size": 5, "ordering": "priority"}).json()["next"]
    r = client.get(nxt.replace("ordering=priority", "ordering=-status"))
    assert r.status_code == 400 and "ordering" in r.json()["errors"]["cursor"][0]


def test_queries_do_not_grow_with_the_page_size(world, api, big):
    client = api.as_user(world.user("a", "support_agent"))
    counts = []
    for size in (5, 500):
        first = client.get("/api/v1/tickets/", {"page_size": size}).json()
        for url in ("/api/v1/tickets/", first["next"]):
            with CaptureQueriesContext(connection) as ctx:
                r = client.get(url, {"page_size": size} if url == "/api/v1/tickets/" else {})
            assert r.status_code == 200 and len(r.json()["results"]) == size
            counts.append(len(ctx.captured_queries))
    assert len(set(counts)) == 1, counts


def test_page_numbers_still_answer_with_a_count_and_go_past_the_cap(world, api, big):
    client = api.as_user(world.user("a", "support_agent"))
    first = client.get("/api/v1/tickets/", {"page": 1, "page_size": 500}).json()
    assert first["count"] == COUNT_CAP + 1 and "page=2" in first["next"]
    last_page = -(-BIG // 500)
    body = client.get("/api/v1/tickets/", {"page": last_page, "page_size": 500}).json()
    assert len(body["results"]) == BIG % 500 and body["next"] is None
    assert client.get("/api/v1/tickets/", {"page": last_page + 1, "page_size": 500}).status_code == 404


def test_admin_pages_past_the_cap_and_says_how_many(world, client, big, settings):
    settings.DEBUG = False
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:tickets_ticket_changelist")
    first = client.get(url)
    assert first.status_code == 200
    assert "more than 10,000" in first.content.decode()
    last = -(-BIG // 50)
    r = client.get(url, {"p": last})
    assert r.status_code == 200, r.get("Location")
    assert len(r.context["cl"].result_list) == BIG % 50
    # every row once, the deepest pages included
    seen = [t.pk for p in range(last - 3, last + 1) for t in client.get(url, {"p": p}).context["cl"].result_list]
    assert len(seen) == len(set(seen)) == 150 + BIG % 50
    assert client.get(url, {"p": last + 1}).status_code == 302  # really past the end: Django's ?e=1


FILTER_INDEX = [
    ({"status": "open"}, "tickets_t_status_created_idx"),
    ({"status": "open", "priority": "critical"}, "tickets_t_status_prio_idx"),
    ({"priority": "critical"}, "tickets_t_prio_created_idx"),
    ({"assignee": "AGENT"}, "tickets_t_assignee_idx"),
    ({"status": "open,in_progress,waiting"}, "tickets_t_unresolved_idx"),
    ({"breached": "true"}, "tickets_t_breached_idx"),
    ({"at_risk": "true"}, "tickets_t_at_risk_idx"),
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="index plans are PostgreSQL's")
@pytest.mark.parametrize(("params", "index"), FILTER_INDEX, ids=[i for _, i in FILTER_INDEX])
def test_selective_filters_are_one_index_range_in_the_default_order(world, params, index):
    """Issue 24.4: on a tenant where the filter keeps 1–5 % of the rows, the page is one scan of
    the filter's index in the default order (no sort), and so is the next page by cursor."""
    from django.db import transaction

    from apps.core.api.pagination import KeysetPagination
    from apps.tickets.api.filters import TicketFilter
    from apps.tickets.search import ordering_for

    user = world.user("a", "support_agent")
    now = timezone.now()
    Ticket.objects.bulk_create(
        (
            Ticket(
                tenant=world.tenant("a"),
                number=new_ticket_number(),
                subject=f"s{i}",
                origin_type="tenant",
                target_type="platform",
                status={0: "open", 1: "waiting", 2: "in_progress"}.get(i % 25, "closed"),
                priority="critical" if i % 30 == 0 else "normal",
                assignee=user if i % 10 == 0 else None,
                first_response_breached=i % 50 == 0,
                sla_at_risk=i % 60 == 0,
                created_at=now - timezone.timedelta(minutes=i),
            )
            for i in range(8000)
        ),
        batch_size=2000,
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE tickets_ticket")
    params = {k: (str(user.pk) if v == "AGENT" else v) for k, v in params.items()}
    qs = TicketFilter(params, queryset=Ticket.objects.visible_to(user)).qs.order_by(*ordering_for(None))
    last = qs[49]
    keys = KeysetPagination()._keys(qs)
    beyond = qs.filter(KeysetPagination._beyond(keys, [last.created_at, last.pk], False))
    for page in (qs, beyond):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            plan = page[:51].explain()
        assert f"using {index} on tickets_ticket" in plan, plan
        assert "Sort" not in plan, plan


@pytest.mark.parametrize("ordering", [None, "severity", "-occurrences", "first_seen"])
def test_alerts_page_by_cursor_in_every_ordering(world, api, ordering):
    from tests.factories.alerts import AlertFactory

    now = timezone.now()
    made = {
        AlertFactory(
            tenant=world.tenant("a"), last_seen=now, first_seen=now, severity=("warning", "critical")[i % 2], occurrences=i % 3
        ).pk
        for i in range(9)
    }
    client = api.as_user(world.user("a", "admin"))
    pages, _ = _walk(client, {"page_size": 2, **({"ordering": ordering} if ordering else {})}, start="/api/v1/alerts/")
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) and set(seen) == made


@pytest.mark.parametrize("ordering", [None, "priority", "-created_at"])
def test_notifications_page_by_cursor(world, api, ordering):
    from tests.factories.notifications import NotificationFactory

    me = world.user("a", "support_agent")
    made = {NotificationFactory(tenant=world.tenant("a"), recipient=me, priority=("low", "high")[i % 2]).pk for i in range(7)}
    client = api.as_user(me)
    pages, _ = _walk(client, {"page_size": 3, **({"ordering": ordering} if ordering else {})}, start="/api/v1/notifications/")
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen)) and set(seen) == made
    assert client.get("/api/v1/notifications/", {"cursor": "forged"}).status_code == 400
