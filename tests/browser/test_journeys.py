"""The main journeys of a staff user through the admin, in Debian's headless chromium.

Each test builds its world with factories and services, then acts only as a person would:
following links, filling forms, ticking rows and running actions. Screenshots of the key steps
are kept under var/test-artifacts/browser/<test>/ (see the `shots` fixture) for a reviewer.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import PASSWORD
from tests.world import build_world

pytestmark = pytest.mark.browser


def _login(page, base, username, token: str | None = None):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    if token is not None:
        page.fill("#id_otp_token", token)
    page.click("#login-form input[type=submit]")
    page.wait_for_selector("#user-tools")


def _open(page, model_name: str):
    """On the admin index, follow a model's link by its name, as a person clicks it."""
    with page.expect_navigation():
        page.locator("#content-main tr[class*='model-'] th").get_by_role("link", name=model_name, exact=True).first.click()


def _run_action(page, row_text: str, action: str):
    """Tick the changelist row that shows `row_text`, choose `action`, press Go."""
    row = page.locator("#result_list tbody tr", has_text=row_text)
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    with page.expect_navigation():
        page.click("button[name=index]")


def _messages(page) -> str:
    return page.locator("ul.messagelist").text_content() if page.locator("ul.messagelist").count() else ""


# -- 1. log in with MFA ----------------------------------------------------------------------
def test_staff_logs_in_with_password_then_totp_token(transactional_db, live_server, browser_page, shots, settings):
    """Tenant A requires staff MFA (Organization.require_staff_mfa=on, the per-tenant switch):
    the password opens a session that owes its code; every admin page leads to /admin/mfa/."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from apps.core.choices import StaffMfa

    settings.PORTAL_ADMIN_REQUIRE_OTP = False  # the tenant's own switch decides, not the global default
    world = build_world()
    tenant = world.tenant("a")
    tenant.require_staff_mfa = StaffMfa.ON
    tenant.save(update_fields=["require_staff_mfa"])
    user = world.user("a", "admin")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    def token(drift: int = 0) -> str:
        return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"

    page, base = browser_page, live_server.url
    page.goto(f"{base}/admin/tickets/ticket/")
    assert "/admin/login/" in page.url
    shots("login-form")

    # the password alone is not enough: the portal asks for the code before any admin page
    page.fill("#id_username", "a-admin")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form input[type=submit]")
    assert "/admin/mfa/" in page.url
    assert page.locator("#user-tools a", has_text="Tickets").count() == 0
    shots("code-required")
    page.goto(f"{base}/admin/tickets/ticket/")  # typing an admin URL does not get around it
    assert "/admin/mfa/" in page.url

    # a wrong code is refused (one that no step in the accepted window would produce)
    valid_now = {token(d) for d in (-2, -1, 0, 1, 2)}
    wrong = next(t for t in ("000000", "123456", "999999", "424242") if t not in valid_now)
    page.fill("#id_otp_token", wrong)
    with page.expect_navigation():
        page.click("#content form [type=submit]")
    assert "/admin/mfa/" in page.url
    assert "not valid" in page.inner_text("#content")
    shots("wrong-code-refused")

    # django-otp throttles a device for 1 s after a failure; a person takes longer to retype
    page.wait_for_timeout(1500)
    page.fill("#id_otp_token", token())
    with page.expect_navigation():
        page.click("#content form [type=submit]")
    page.wait_for_selector("#user-tools")
    assert "/admin/tickets/ticket/" in page.url  # back where the person was going
    page.goto(f"{base}/admin/")
    assert "Operations" in page.inner_text("#content")  # the admin index (index_title)
    assert page.locator("#content-main a", has_text="Tickets").count() >= 1
    shots("admin-index")
    device.refresh_from_db()
    assert device.last_used_at is not None


# -- 2. create a ticket and reply -------------------------------------------------------------
def test_agent_opens_ticket_and_replies(transactional_db, live_server, browser_page, shots):
    from apps.tickets.models import Ticket

    build_world()
    page, base = browser_page, live_server.url
    _login(page, base, "a-support_agent")
    _open(page, "Tickets")
    with page.expect_navigation():
        page.click(".object-tools a.addlink")
    page.fill("#id_subject", "Backups of shop-eu failed twice")
    page.select_option("#id_priority", "high")
    page.select_option("#id_target_type", "platform")
    page.fill("#id_message", "The nightly backup job exited 12 on Monday and Tuesday.")
    shots("add-ticket-form")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "was added successfully" in _messages(page), _messages(page)
    ticket = Ticket.objects.get(subject="Backups of shop-eu failed twice")
    assert ticket.number in page.inner_text("#content")
    messages = page.locator("#messages-group")
    assert "The nightly backup job exited 12" in messages.inner_text()
    shots("ticket-created")

    page.fill("#id_reply", "We are re-running the backup now and will report back within the hour.")
    shots("reply-written")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "was changed successfully" in _messages(page), _messages(page)
    messages = page.locator("#messages-group")
    assert "re-running the backup now" in messages.inner_text()
    reply_row = messages.locator("tr", has_text="re-running the backup now")
    assert "a-support_agent" in reply_row.inner_text()
    assert reply_row.locator("img[alt=False]").count() == 1  # is_internal: no — a public reply
    assert "First response" in page.locator("#timeline-group").inner_text()
    shots("reply-in-messages-and-timeline")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None
    assert list(ticket.messages.order_by("created_at").values_list("is_internal", flat=True)) == [False, False]


# -- 3. acknowledge an alert ------------------------------------------------------------------
def test_operator_acknowledges_alert_from_changelist(transactional_db, live_server, browser_page, shots):
    from apps.alerts import services as alert_services
    from apps.alerts.choices import AlertStatus, Severity

    world = build_world()
    alert, _ = alert_services.alert_raise(tenant=world.tenant("a").pk, alert_type="custom", title="Disk 91% full on db-1",
                                          severity=Severity.CRITICAL, resource_type="host", resource_id="db-1", source="manual", actor=None)
    alert_services.alert_raise(tenant=world.tenant("a").pk, alert_type="custom", title="Queue lag on worker-3",
                               severity=Severity.WARNING, resource_type="host", resource_id="worker-3", source="manual", actor=None)
    page, base = browser_page, live_server.url
    _login(page, base, "a-operator")
    _open(page, "Alerts")
    row = page.locator("#result_list tbody tr", has_text="Disk 91% full on db-1")
    assert "Firing" in row.inner_text()
    shots("alerts-firing")

    _run_action(page, "Disk 91% full on db-1", "acknowledge")
    assert "1 alert(s) acknowledged." in _messages(page), _messages(page)
    row = page.locator("#result_list tbody tr", has_text="Disk 91% full on db-1")
    assert "Acknowledged" in row.inner_text()
    other = page.locator("#result_list tbody tr", has_text="Queue lag on worker-3")
    assert "Firing" in other.inner_text()  # only the ticked alert
    shots("alert-acknowledged")

    with page.expect_navigation():
        row.locator("th a").first.click()
    details = page.inner_text("#content-main")
    assert "a-operator" in details  # acknowledged by
    shots("alert-details")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by.username == "a-operator"


# -- 4. run a job and watch its output --------------------------------------------------------
def test_operator_runs_job_and_watches_live_output(transactional_db, live_server, browser_page, shots, celery_worker, sshd, tmp_path):
    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from tests.factories.targets import make_credential, make_job, make_target

    world = build_world()
    tenant = world.tenant("a")
    cred = make_credential(tenant, name="deploy-key", username=sshd.user, secret=sshd.key)
    target = make_target(tenant, name="web-1", port=sshd.port, credential=cred)
    # The command prints a line, then waits (at most 30 s) for the test to release it, so the page
    # is seen streaming while the run is still going, whatever the machine's speed.
    release = tmp_path / "release"
    job = make_job(tenant, name="Disk report", steps=[{"name": "report", "type": "ssh.exec", "command": (
        f"echo journey-$((6*7)); for i in $(seq 300); do [ -e {release} ] && break; sleep 0.1; done; echo done-on-$(uname -s)")}])
    job.default_targets.add(target)

    page, base = browser_page, live_server.url
    _login(page, base, "a-operator")
    _open(page, "Jobs")
    shots("jobs")
    _run_action(page, "Disk report", "run_now")
    assert "Disk report: run queued." in _messages(page), _messages(page)
    shots("run-queued")

    with page.expect_navigation():
        page.locator("#nav-sidebar").get_by_role("link", name="Job runs", exact=True).click()
    row = page.locator("#result_list tbody tr", has_text="Disk report")
    assert row.count() == 1
    with page.expect_navigation():
        row.locator("th a").first.click()
    # the live output box polls the portal and grows while the worker runs the job over ssh
    output = page.locator("#run-output")
    output.filter(has_text="journey-42").wait_for(timeout=30000)
    assert "[web-1#0 stdout] journey-42" in output.inner_text(), output.inner_text()
    assert "done-on" not in output.inner_text()
    assert JobRun.objects.get(job=job).status == RunStatus.RUNNING
    shots("live-output-streaming")

    release.touch()
    output.filter(has_text="done-on-Linux").wait_for(timeout=30000)  # no reload: the box kept polling
    for _ in range(40):  # a person reloads until the status settles
        page.reload()
        if "Succeeded" in page.locator(".field-status").inner_text():
            break
        page.wait_for_timeout(500)
    assert "Succeeded" in page.locator(".field-status").inner_text(), page.locator(".field-status").inner_text()
    assert "succeeded" in page.locator(".field-results").inner_text() and "web-1" in page.locator(".field-results").inner_text()
    page.locator("#run-output").filter(has_text="done-on-Linux").wait_for()
    shots("run-succeeded")
    run = JobRun.objects.get(job=job)
    assert run.status == RunStatus.SUCCEEDED and run.triggered_by.username == "a-operator"


# -- 5. schedule a deployment and see its PeriodicTask ----------------------------------------
def test_platform_admin_schedules_deployment_and_finds_periodic_task(transactional_db, live_server, browser_page, shots):
    from apps.deployments.models import DeploymentSchedule
    from tests.factories.deployments import make_instance

    world = build_world()
    tenant = world.tenant("a")
    tenant.timezone = "Europe/Berlin"
    tenant.save(update_fields=["timezone"])
    instance = make_instance(tenant, name="shop-eu", version="1.4")
    starts = timezone.localtime(timezone.now() + timedelta(days=1))

    page, base = browser_page, live_server.url
    _login(page, base, "platform-admin")
    _open(page, "Deployment schedules")
    with page.expect_navigation():
        page.click(".object-tools a.addlink")
    page.click(".field-instance .select2-selection")  # the autocomplete box
    page.fill(".select2-container--open .select2-search__field", "shop")
    page.click(".select2-results__option:has-text('shop-eu')")
    page.select_option("#id_operation", "upgrade")
    page.fill("#id_scheduled_at_0", starts.strftime("%Y-%m-%d"))
    page.fill("#id_scheduled_at_1", "02:30:00")
    page.fill("#id_cron_expression", "30 2 * * 1")
    page.fill("#id_request", '{"to_version": "1.5"}')
    shots("add-schedule-form")
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert "was added successfully" in _messages(page), page.inner_text("#content")
    row = page.locator("#result_list tbody tr", has_text="shop-eu")
    assert "30 2 * * 1" in row.inner_text()
    shots("schedule-listed")
    schedule = DeploymentSchedule.objects.select_related("periodic_task__crontab").get(instance=instance)
    assert schedule.parameters["to_version"] == "1.5" and schedule.created_by.username == "platform-admin"

    # the schedule's own beat row, in django-celery-beat's admin
    with page.expect_navigation():
        page.locator("#site-name a").click()
    _open(page, "Periodic tasks")
    page.fill("#searchbar", "shop-eu")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    task_name = schedule.periodic_task.name  # tenant · instance · operation · id
    row = page.locator("#result_list tbody tr", has_text=task_name)
    assert row.count() == 1, page.inner_text("#result_list")
    listed = row.inner_text()
    assert re.search(r"30 2 \* \* 1 .*Europe/Berlin", listed), listed
    shots("periodic-task-listed")
    with page.expect_navigation():
        row.get_by_role("link", name=task_name).click()
    assert not page.locator("#id_enabled").is_checked()  # display-only: the due-schedule dispatcher fires it
    crontab = page.locator("#id_crontab option:checked").inner_text()
    assert "30 2 * * 1" in crontab and "Europe/Berlin" in crontab, crontab
    assert str(schedule.pk) in page.input_value("#id_kwargs")
    assert page.input_value("#id_queue") == "jobs"
    shots("periodic-task-details")
    assert schedule.periodic_task.crontab.timezone.key == "Europe/Berlin"
    assert schedule.periodic_task.task == "deployments.fire_schedule"
