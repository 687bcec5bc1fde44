"""/api/docs/ renders in a real browser from the portal's own assets (no CDN on this network)."""

import pytest

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_offline(live_server, browser_page, transactional_db):
    page = browser_page
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) and not r.url.startswith("data:") else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
    assert "opsportal API" in page.inner_text(".swagger-ui .info")
    assert page.locator(".swagger-ui .opblock").count() > 5  # the schema loaded and operations render
    assert outside == [], f"docs fetched from outside the portal: {outside[:3]}"
