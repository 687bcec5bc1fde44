"""Structured editors and schedule timing as tenant staff use them, in Debian's headless chromium:
edit an alert rule's conditions through the form drawn from its JSON schema (and peek at the raw
JSON), and change a job schedule's timing with its next-10-runs preview. Screenshots of every
step: var/test-artifacts/browser/<test>/ (the `shots` fixture)."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_journeys import _login, _messages, _open
from tests.world import build_world

pytestmark = pytest.mark.browser


def test_admin_edits_rule_conditions_in_the_structured_editor(transactional_db, live_server, browser_page, shots):
    from apps.alerts import services
    from apps.alerts.models import AlertRule

    world = build_world()
    rule = services.rule_create(actor=world.user("a", "admin"), tenant=world.tenant("a"), name="SLA breaches",
                                rule_type="sla", conditions={"on": ["breached"]})
    page, base = browser_page, live_server.url
    _login(page, base, "a-admin")
    _open(page, "Alert rules")
    shots("rule-list")
    with page.expect_navigation():
        page.locator("#result_list a", has_text="SLA breaches").click()
    box = page.locator(".field-conditions")
    box.locator(".rjf-form-wrapper").wait_for()
    assert box.locator("select[name='rjf§on§0']").input_value() == "breached"
    shots("rule-structured-editor")

    # alert on "at risk" too, only for high priority, 45 minutes before the deadline
    adds = box.locator("button.rjf-add-button")  # "Add item" under On, then under Priorities
    adds.nth(0).click()
    box.locator("select[name='rjf§on§1']").select_option("at_risk")
    adds.nth(1).click()
    box.locator("select[name='rjf§priorities§0']").select_option("high")
    box.locator("input[name='rjf§at_risk_minutes']").fill("45")
    shots("conditions-filled")

    # the raw JSON shows what the form will save
    box.locator("details.structured-json-raw summary").click()
    raw = json.loads(box.locator("textarea[name=conditions__raw]").input_value())
    assert raw == {"on": ["breached", "at_risk"], "priorities": ["high"], "at_risk_minutes": 45}, raw
    assert not box.locator("input[name=conditions__use_raw]").is_checked()
    shots("raw-json-open")

    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "was changed successfully" in _messages(page), page.inner_text("#content")
    rule.refresh_from_db()
    assert rule.conditions == {"on": ["breached", "at_risk"], "priorities": ["high"], "at_risk_minutes": 45}
    assert rule.alert_config == {} and rule.actions == []  # untouched editors add nothing
    shots("rule-saved")

    # a refused value comes back as an error on the field, typed in the raw JSON
    box = page.locator(".field-conditions")
    box.locator("details.structured-json-raw summary").click()
    box.locator("textarea[name=conditions__raw]").fill('{"on": ["breached"], "at_risk_minutes": 0}')
    assert box.locator("input[name=conditions__use_raw]").is_checked()  # typing there ticks it
    with page.expect_navigation():
        page.click("input[name=_continue]")
    error = page.locator(".field-conditions .errorlist").inner_text()
    assert "at_risk_minutes" in error and "minimum" in error.lower() or "less than" in error, error
    assert AlertRule.objects.get(pk=rule.pk).conditions["at_risk_minutes"] == 45
    shots("error-on-the-field")


def test_operator_changes_job_schedule_timing(transactional_db, live_server, browser_page, shots):
    from apps.targets.models import JobSchedule
    from apps.targets.services import definitions, schedules

    world = build_world()
    admin = world.user("a", "admin")
    job = definitions.job_create(actor=admin, tenant=world.tenant("a"), name="Disk report",
                                 steps=[{"type": "ssh.exec", "name": "df", "command": "df -h"}])
    schedule = schedules.schedule_create(actor=admin, job=job, name="nightly", cron="0 2 * * *", timezone="UTC")
    page, base = browser_page, live_server.url
    _login(page, base, "a-operator")
    _open(page, "Job schedules")
    shots("schedule-list")
    with page.expect_navigation():
        page.locator("#result_list a", has_text="nightly").click()
    preview = page.locator(".field-preview .readonly").inner_text()
    assert "02:00 UTC" in preview, preview
    shots("schedule-before")

    page.fill("#id_cron", "30 3 * * 1-5")
    page.fill("#id_timezone", "Europe/Berlin")
    shots("timing-filled")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "was changed successfully" in _messages(page), page.inner_text("#content")
    preview = page.locator(".field-preview .readonly").inner_text().splitlines()
    assert len(preview) == 10 and all("03:30 CE" in line for line in preview), preview
    shots("schedule-after")
    saved = JobSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    assert (saved.cron, saved.timezone) == ("30 3 * * 1-5", "Europe/Berlin")
    crontab = saved.periodic_task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == ("30", "3", "1-5", "Europe/Berlin")

    # a cron no one can read is refused on the field; nothing changes
    page.fill("#id_cron", "30 25 * * *")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert page.locator(".field-cron .errorlist").count() == 1, page.inner_text("#content")
    assert JobSchedule.objects.get(pk=schedule.pk).cron == "30 3 * * 1-5"
    shots("bad-cron-refused")
