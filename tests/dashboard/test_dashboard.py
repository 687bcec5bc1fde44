"""The staff dashboard on the admin index and `GET /api/v1/dashboard/summary`: scoped to what the
user may see, and a fixed number of queries whatever the number of rows behind it."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.dashboard.services import health_recompute, summary_refresh
from apps.dashboard.tasks import refresh_summaries_task
from tests.factories import OrganizationFactory
from tests.factories.alerts import AlertFactory
from tests.factories.customers import customer_of
from tests.factories.dashboard import checks, job_runs, open_critical, sla_tickets
from tests.factories.notifications import DeliveryFactory, NotificationFactory


def _seed(world, scale: int):
    now = timezone.now()
    a, b = world.tenant("a"), world.tenant("b")
    open_critical(a, 2 * scale)
    open_critical(b, 7 * scale)
    sla_tickets(a, at=now - timedelta(days=2), total=4 * scale, breached=scale)
    AlertFactory(tenant=a, severity="critical")
    job_runs(a, at=now - timedelta(days=1), ok=3 * scale, failed=scale)
    checks(a, at=now - timedelta(hours=3), up=99 * scale, down=scale)
    note = NotificationFactory(tenant=a, recipient=world.user("a", "admin"))
    DeliveryFactory(notification=note, status="failed")
    summary_refresh()
    health_recompute()


def _index_queries(client, user) -> tuple[int, bytes]:
    client.force_login(user)
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(reverse("admin:index"))
    assert r.status_code == 200
    return len(ctx.captured_queries), r.content


def test_index_shows_the_tenants_figures_only(world, client):
    _seed(world, 1)
    _, html = _index_queries(client, world.user("a", "viewer"))
    page = html.decode()
    assert 'id="portal-dashboard"' in page
    assert "Open tickets <strong>2</strong>" in page  # A's 2, not B's 7
    assert "75.0%" in page  # SLA 7 d: 1 of 4 breached
    assert "99.0%" in page  # availability
    assert "Tenant B" not in page
    assert 'id="org-switcher"' in page or "org-select" not in page  # base_site still renders
    assert "/static/dashboard/dashboard.css" in page


def test_platform_sees_the_sum_over_tenants(world, api):
    _seed(world, 1)
    body = api.as_user(world.user("platform", "admin")).get(
        "/api/v1/dashboard/summary"
    ).json()
    assert body["tenants"] == 2 and body["tickets_open"]["total"] == 9
    assert body["tickets_open"]["by_priority"]["critical"] == 9
    assert body["alerts"]["firing_by_severity"]["critical"] == 1
    assert body["notifications"]["failed_7d"] == 1
    assert body["jobs"]["runs_14d"] == 4 and body["jobs"]["success_percent_14d"] == 75.0
    assert body["deployments"]["available"] in (True, False)
    assert {h["tenant"] for h in body["health"]} >= {"tenant-a", "tenant-b"}


def test_api_summary_is_scoped(world, api):
    _seed(world, 1)
    body = api.as_user(world.user("a", "viewer")).get("/api/v1/dashboard/summary").json()
    assert body["tenants"] == 1 and body["tickets_open"]["total"] == 2
    assert body["sla_compliance"]["7d"] == {"percent": 75.0, "tickets": 4, "breached": 1}
    assert {h["tenant"] for h in body["health"]} == {"tenant-a"}
    cust = api.as_user(world.user("a", "customer")).get("/api/v1/dashboard/summary").json()
    assert cust["tenants"] == 0 and cust["tickets_open"]["total"] == 0 and cust["health"] == []
    partner = api.as_user(world.user("partner", "admin"))
    assert partner.get("/api/v1/dashboard/summary").json()["tenants"] == 0
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/dashboard/summary").status_code == 401


def test_health_api_lists_reasons(world, api):
    _seed(world, 1)
    rows = api.as_user(world.user("a", "admin")).get("/api/v1/dashboard/health?level=tenant").json()
    rows = rows.get("results", rows)
    assert [r["tenant"] for r in rows] == ["tenant-a"]
    assert rows[0]["reasons"][0]["factor"] == "open_critical_tickets" and rows[0]["score"] < 100


def test_index_query_count_does_not_grow_with_rows(world, client):
    _seed(world, 1)
    user = world.user("a", "admin")
    small, _ = _index_queries(client, user)
    _seed(world, 5)
    for i in range(3):  # more tenants too: the platform's sum is still one query
        OrganizationFactory(kind="tenant", slug=f"extra-{i}", name=f"Extra {i}")
    summary_refresh()
    health_recompute()
    large, _ = _index_queries(client, user)
    assert large == small
    platform_small, _ = _index_queries(client, world.user("platform", "admin"))
    sla_tickets(world.tenant("b"), at=timezone.now(), total=30, breached=3)
    refresh_summaries_task.delay()
    platform_large, html = _index_queries(client, world.user("platform", "admin"))
    assert platform_large == platform_small
    assert b"5 tenants" in html


def test_customer_summary_has_open_tickets_and_health(world, api):
    import apps.tickets.customer_summary as contributed
    from apps.tenants.customers import registry

    # another app's test may have replaced the key in the process-wide registry; put ours back
    registry.summary_contributors()
    registry.register_summary_contributor("open_tickets")(contributed.open_tickets)
    customer = customer_of(world, "a")
    open_critical(world.tenant("a"), 2, customer=world.orgs["a-customer"])
    open_critical(world.tenant("a"), 1)  # not the customer's
    health_recompute()
    r = api.as_user(world.user("a", "admin")).get(f"/api/v1/customers/{customer.pk}/summary")
    assert r.status_code == 200, r.content[:3000]
    body = r.json()
    assert body["open_tickets"]["count"] == 2 and len(body["open_tickets"]["tickets"]) == 2
    assert body["health"]["score"] == 80 and body["health"]["reasons"][0]["factor"] == "open_critical_tickets"
    own = api.as_user(world.user("a", "customer")).get(f"/api/v1/customers/{customer.pk}/summary").json()
    assert own["open_tickets"]["count"] == 2
    assert own["health"] is None  # health is a staff view
