"""A new user's first minutes, in a real browser: log in to the admin, see their tenant only."""

import pytest

from tests.factories import PASSWORD
from tests.world import build_world

pytestmark = pytest.mark.browser


def _login(page, base, username):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_viewer_of_tenant_a_never_sees_tenant_b(live_server, browser_page, transactional_db):
    build_world()
    page = browser_page
    _login(page, live_server.url, "a-viewer")
    assert "Tenant B" not in page.content()
    page.goto(f"{live_server.url}/admin/tenants/organization/")
    body = page.inner_text("#result_list")
    assert "Tenant A" in body and "Customer of A" in body
    assert "Tenant B" not in body and "Customer of B" not in body
    # the view-only role gets no "Add" button
    assert page.locator(".object-tools a.addlink").count() == 0


def test_platform_admin_switches_organization(live_server, browser_page, transactional_db):
    from apps.core.choices import Role
    from tests.factories import MembershipFactory

    world = build_world()
    MembershipFactory(user=world.user("a", "admin"), organization=world.tenant("b"), role=Role.VIEWER)
    page = browser_page
    _login(page, live_server.url, "a-admin")
    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    assert "Tenant A" in page.inner_text("#result_list")
    with page.expect_navigation():
        page.select_option("#org-select", "tenant-b")
    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    listing = page.inner_text("#result_list")
    assert "Tenant B" in listing and "Tenant A" not in listing
