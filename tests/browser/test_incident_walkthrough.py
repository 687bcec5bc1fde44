"""Issue 10's loop walked in the admin, in Debian's headless chromium, by the tenant's on-call
operator — while the loop really runs (beat process, Celery worker, loopback sshd, the watched web
service as its own process; set up as in tests/incident/test_acceptance.py): the endpoints up,
the service crashes, the alert appears, its ticket with SLA due times, the runbook request and
its run with the SSH output, then the resolution and the tenant timeline.

Screenshots are kept in `var/test-artifacts/<test name>/` (the `artifacts_dir` fixture)."""

from __future__ import annotations

import time

import pytest

from apps.alerts.models import Alert
from apps.monitoring.models import Endpoint
from tests.conftest import wait_for
from tests.factories import PASSWORD
from tests.incident.loop import configure_loop, sla_policy_for_critical
from tests.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def _login(page, base, username):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def _reload_until(page, url: str, selector: str, text: str, timeout: float = 40.0) -> str:
    """Reload `url` (as a person pressing F5) until `selector` shows `text`; returns its text."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        shown = page.inner_text(selector) if page.locator(selector).count() else ""
        if text in shown:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not shown in {selector} of {url} within {timeout}s; it shows:\n{shown[:2000]}")
        time.sleep(1)


def test_operator_walks_the_incident_loop_in_the_admin(live_server, browser_page, transactional_db, api, settings, sshd, web_service,
                                                       celery_worker, celery_beat, artifacts_dir):
    settings.MONITORING_MIN_INTERVAL_SECONDS = 2
    world = build_world()
    tenant = world.tenant("a")
    sla_policy_for_critical(tenant)
    loop = configure_loop(api.as_user(world.user("a", "admin")), sshd=sshd, service=web_service)
    base, page = live_server.url, browser_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    shots = []

    def shot(name, full_page=True):
        path = artifacts_dir / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        shots.append(path)

    _login(page, base, "a-operator")
    wait_for(lambda: Endpoint.objects.filter(pk__in=loop.endpoints, status="up").count() == 2, timeout=30)
    listing = _reload_until(page, f"{base}/admin/monitoring/endpoint/", "#result_list", "web health")
    assert "web home" in listing
    shot("endpoints-up")

    # the service crashes; the alert shows up in the admin without anyone doing anything
    web_service.kill()
    alerts_url = f"{base}/admin/alerts/alert/?alert_type__exact=endpoint_down"
    _reload_until(page, alerts_url, "#result_list", "Endpoint down: web")
    wait_for(lambda: Alert.objects.filter(tenant=tenant, alert_type="endpoint_down", ticket__isnull=False).exists(), timeout=30)
    listing = _reload_until(page, alerts_url, "#result_list", "TCK-")
    assert "Critical" in listing or "critical" in listing
    shot("alert-firing")

    # open the alert, then its ticket
    page.click("#result_list tbody tr:first-child th a")
    page.wait_for_selector(".field-ticket")
    assert "service" in page.inner_text(".field-labels") and "web-1" in page.inner_text(".field-labels")
    shot("alert")
    page.click(".field-ticket a")
    page.wait_for_selector(".field-sla_policy")
    ticket_url = page.url
    assert "Critical incidents" in page.inner_text(".field-sla_policy")
    assert page.inner_text(".field-first_response_due_at .readonly").strip() not in ("", "-")
    assert page.inner_text(".field-resolution_due_at .readonly").strip() not in ("", "-")
    assert "incident" in page.input_value("#id_tags")
    shot("ticket-open-with-sla")

    # the runbook request the rule made, and its run with the output from the SSH host
    runbooks = _reload_until(page, f"{base}/admin/alerts/runbookrequest/", "#result_list", "Succeeded")
    assert "restart web" in runbooks
    page.click("#result_list tbody tr:first-child th a")
    page.wait_for_selector(".field-summary")
    # the list's "Succeeded" can be the run's; the request's summary follows on job_run.succeeded
    assert "restarting web on web-1" in _reload_until(page, page.url, ".field-summary", "restarting web on web-1")
    assert "Succeeded" in page.inner_text(".field-status")
    shot("runbook-request")
    page.click(".field-run a")
    # a locator wait, not wait_for_function: the portal's CSP refuses eval'd predicates, as it should
    page.locator("#run-output", has_text="started pid").wait_for()
    assert "restarting web on web-1" in page.inner_text("#run-output")
    shot("runbook-run-output")

    # the checks see the service again → alerts resolve → the ticket is resolved with a summary
    _reload_until(page, ticket_url, ".field-status", "Resolved")
    messages = page.inner_text("#content")
    assert "has been resolved" in messages and "restart web" in messages and "queued as run" in messages
    shot("ticket-resolved")
    listing = _reload_until(page, alerts_url, "#result_list", "Resolved")
    assert "Firing" not in listing
    shot("alerts-resolved")

    # the tenant timeline (the admin session works for the API) tells the same story
    page.goto(f"{base}/api/v1/tenants/{tenant.slug}/timeline?limit=100")
    story = page.content()
    for name in ("endpoint.down", "alert.fired", "ticket.created", "job_run.succeeded", "endpoint.up", "alert.resolved", "ticket.resolved"):
        assert name in story, name
    shot("timeline", full_page=False)  # the newest entries; the whole page is a long JSON document

    assert all(p.stat().st_size > 5_000 for p in shots)
    print("screenshots:\n" + "\n".join(f"  {p}" for p in shots))
