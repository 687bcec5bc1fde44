"""In Debian's headless chromium: log in to the admin, read the dashboard, open a customer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.dashboard.services import health_recompute, kpi_checkpoint_run, summary_refresh
from apps.tenants.customers.choices import ServiceStatus
from tests.factories import PASSWORD
from tests.factories.alerts import AlertFactory
from tests.factories.customers import CustomerServiceFactory, customer_of
from tests.factories.dashboard import checks, job_runs, open_critical, sla_tickets
from tests.world import build_world

pytestmark = pytest.mark.browser


def test_admin_dashboard_and_customer_in_chromium(live_server, browser_page, transactional_db, tmp_path):
    world = build_world()
    a, now = world.tenant("a"), timezone.now()
    customer = customer_of(world, "a")
    open_critical(a, 2, customer=world.orgs["a-customer"])
    open_critical(world.tenant("b"), 7)
    for days in range(1, 9):
        sla_tickets(a, at=now - timedelta(days=days), total=6, breached=days % 3)
        job_runs(a, at=now - timedelta(days=days), ok=8, failed=days % 2, seconds=20 + 5 * days)
    AlertFactory(tenant=a, severity="critical", title="Core router down")
    AlertFactory(tenant=a, severity="warning")
    checks(a, at=now - timedelta(days=now.weekday() + 3), up=990, down=10)  # inside last week, the KPI period
    CustomerServiceFactory(customer=customer, status=ServiceStatus.FAILED)
    sla_tickets(a, at=now - timedelta(days=now.weekday() + 3), total=10, breached=3)
    kpi_checkpoint_run(now=now)
    summary_refresh()
    health_recompute()

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1200})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "a-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#portal-dashboard")
    dash = page.inner_text("#portal-dashboard")
    # tenant A only: 2 critical tickets + 3 KPI backlog tickets (B's 7 are not counted)
    assert "Open tickets 5" in dash.replace("\n", " ") and "Tenant B" not in dash
    assert "Customer of A" in page.inner_text("#tile-health")
    assert "Missed" in page.inner_text("#tile-kpis")
    assert page.locator("#portal-dashboard svg.dash-chart").count() >= 5
    assert page.locator("#org-switcher").count() in (0, 1)  # the base template still renders
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/tenants/customer/{customer.pk}/change/")
    page.wait_for_selector("#content")
    assert customer.account_number in page.content()
    page.screenshot(path=str(artifacts / "customer.png"), full_page=True)
    assert (artifacts / "dashboard.png").stat().st_size > 10_000
    print(f"screenshots in {artifacts}")
