"""The Content-Security-Policy works in a real browser: chromium loads the admin (index with the
dashboard, changelists, change forms with inlines, autocomplete, the organization switcher, a job
run's live output), Swagger UI at /api/docs/ and the browsable API with the portal's policy in
force, and reports no violation — every page still works (the switcher navigates, Swagger renders
operations, the live output fetches). A control page with an injected inline script proves the
collector sees violations at all."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

# Every violation the page reports (the DOM event carries the directive and a sample).
COLLECT = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.effectiveDirective + " " + (e.blockedURI || "") + " " + (e.sample || ""));
});
"""


class Pages:
    def __init__(self, page, base):
        self.page, self.base = page, base
        self.console: list[str] = []
        self.policies: dict[str, str] = {}
        page.add_init_script(COLLECT)
        page.on("console", lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("response", self._record)

    def _record(self, response):
        if response.headers.get("content-type", "").startswith("text/html"):
            self.policies[response.url] = response.headers.get("content-security-policy", "")

    def visit(self, path: str, ready: str = "#content") -> list[str]:
        self.page.goto(self.base + path)
        self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")
        return self.violations()

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []")) + [c for c in self.console]

    def login(self, username: str):
        self.page.goto(f"{self.base}/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("input[type=submit]")
        self.page.wait_for_selector("#site-name")


def _rows(world):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from apps.tickets import services as tickets
    from tests.factories.targets import make_job

    admin = world.user("a", "admin")
    ticket = tickets.ticket_create(actor=admin, subject="CSP ticket", message="hello")
    tickets.ticket_attach(ticket, actor=admin, file=SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain"))
    job = make_job(world.tenant("a"), name="csp-job")
    run = JobRun.objects.create(tenant=world.tenant("a"), job=job, version=job.current_version, status=RunStatus.SUCCEEDED)
    membership = admin.memberships.first()
    return ticket, run, membership


def test_admin_swagger_and_browsable_api_run_under_the_policy_without_violations(live_server, browser_page, transactional_db):
    from apps.core.choices import Role
    from tests.factories import MembershipFactory
    from tests.world import build_world

    world = build_world()
    ticket, run, membership = _rows(world)
    MembershipFactory(user=world.user("a", "admin"), organization=world.tenant("b"), role=Role.VIEWER)  # the switcher shows
    pages = Pages(browser_page, live_server.url)
    pages.login("a-admin")

    visited = {
        "admin index (dashboard)": pages.visit("/admin/"),
        "changelist with actions": pages.visit("/admin/tickets/ticket/"),
        "changelist without actions": pages.visit("/admin/tenants/membership/"),
        "ticket change form (inlines)": pages.visit(f"/admin/tickets/ticket/{ticket.pk}/change/"),
        "membership change form (autocomplete)": pages.visit(f"/admin/tenants/membership/{membership.pk}/change/"),
        "ticket add form": pages.visit("/admin/tickets/ticket/add/"),
    }
    # the job run's live output is an inline script: it must run (it fetches the output URL)
    with browser_page.expect_response(lambda r: f"/admin/targets/jobrun/{run.pk}/output/" in r.url):
        visited["job run live output (inline <script>)"] = pages.visit(f"/admin/targets/jobrun/{run.pk}/change/")
    # the organization switcher (a script file now, not onchange=) still switches
    with browser_page.expect_navigation():
        browser_page.select_option("#org-select", "tenant-b")
    assert browser_page.locator("#org-select").input_value() == "tenant-b"
    visited["after switching organization"] = pages.violations()

    browser_page.goto(f"{live_server.url}/api/docs/")
    browser_page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
    assert browser_page.locator(".swagger-ui .opblock").count() > 5
    browser_page.locator(".swagger-ui .opblock-summary").first.click()  # expanding an operation renders more UI
    browser_page.wait_for_timeout(300)
    visited["/api/docs/ (Swagger UI)"] = pages.violations()
    visited["browsable API"] = pages.visit("/api/v1/tickets/", ready=".response-info")

    dirty = {name: found for name, found in visited.items() if found}
    assert not dirty, f"CSP violations: {dirty}"
    html_pages = [url for url in pages.policies if url.startswith(live_server.url)]
    assert len(html_pages) >= 9, html_pages
    missing = [url for url in html_pages if "script-src 'self'" not in pages.policies[url]]
    assert not missing, f"HTML without the policy: {missing}"
    print(f"\nSECURITY csp: {len(visited)} page states in chromium, {len(html_pages)} HTML responses carried the policy, 0 violations")


def test_the_collector_sees_a_violation(live_server, browser_page, transactional_db):
    """Control: an injected inline script (no nonce) on a page served with the policy is refused and
    reported, so the empty lists above mean something."""
    pages = Pages(browser_page, live_server.url)
    browser_page.goto(f"{live_server.url}/admin/login/")
    browser_page.wait_for_selector("#id_username")
    ran = browser_page.evaluate(
        """() => new Promise(resolve => {
             window.__ran = false;
             const s = document.createElement("script");
             s.textContent = "window.__ran = true";
             document.body.appendChild(s);
             setTimeout(() => resolve(window.__ran), 200);
           })"""
    )
    assert ran is False
    assert any("script-src" in v for v in pages.violations()), pages.violations()
