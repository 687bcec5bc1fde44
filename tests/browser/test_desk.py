"""The ticket desk as a tenant agent uses it, in Debian's headless chromium: take an unassigned
ticket, move it through in progress → waiting → in progress → resolved with a reply that carries
an attachment and a canned response, then export the filtered list. Screenshots of every step go
to var/test-artifacts/browser/<test>/ (the `shots` fixture)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.browser.test_journeys import _login, _messages, _open, _run_action
from tests.world import build_world

pytestmark = pytest.mark.browser


def _move(page, label: str):
    """Press a status button (the one above the fields) and wait for the page to come back."""
    with page.expect_navigation():
        page.locator(".desk-transitions-top button.desk-move", has_text=label).click()


def test_agent_takes_unassigned_ticket_through_the_desk(transactional_db, live_server, browser_page, shots, tmp_path):
    from apps.tickets import services
    from apps.tickets.canned import CannedResponse
    from apps.tickets.models import Ticket

    world = build_world()
    requester = world.user("a", "customer")
    requester.first_name, requester.last_name, requester.email = "Greta", "Lindqvist", "greta@customer-a.example"
    requester.save()
    ticket = services.ticket_create(
        actor=requester,
        subject="Router reboots every night",
        priority="high",
        message="Our office router restarts at 02:00 every night since Friday.",
    )
    other = services.ticket_create(actor=requester, subject="Invoice address change", message="New address attached.")
    services.ticket_assign(other, actor=world.user("a", "admin"), assignee=world.user("a", "operator"))
    CannedResponse.objects.create(
        tenant=world.tenant("a"),
        title="Ask for logs",
        body="Hello {{ customer.name }}, could you send us the router's system log for {{ ticket.number }}? — {{ agent.name }}",
    )
    log = tmp_path / "router-config.txt"
    log.write_text("hostname office-gw\nreboot schedule: none\n")

    page, base = browser_page, live_server.url
    _login(page, base, "a-support_agent")
    _open(page, "Tickets")
    shots("ticket-list")

    # the "Unassigned" queue shows only the ticket nobody holds
    with page.expect_navigation():
        page.locator("#changelist-filter a", has_text="Unassigned").click()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and ticket.number in rows.first.inner_text()
    shots("unassigned-queue")
    _run_action(page, ticket.number, "assign_to_me")
    assert "1 ticket(s) assigned to you" in _messages(page)
    shots("assigned-to-me")

    # open it from the "Mine" queue
    with page.expect_navigation():
        page.goto(f"{base}/admin/tickets/ticket/?queue=mine")
    with page.expect_navigation():
        page.locator("#result_list a", has_text=ticket.number).first.click()
    buttons = page.locator(".desk-transitions-top button.desk-move").all_inner_texts()
    assert buttons == ["Start", "Wait on customer", "Resolve", "Close"], buttons
    shots("ticket-open")

    _move(page, "Start")
    assert "is now in progress" in _messages(page)
    assert page.locator(".desk-transitions-top .desk-status").inner_text() == "Status: In progress"
    shots("in-progress")

    # reply with the canned response and an attachment, and wait on the customer in the same click
    page.select_option("select[data-desk-canned]", label="Ask for logs")
    reply = page.input_value("#id_reply")
    assert reply == f"Hello Greta Lindqvist, could you send us the router's system log for {ticket.number}? — a-support_agent"
    page.fill("#id_reply", reply + "\nOur current config is attached.")
    page.set_input_files("#id_reply_attachments", str(log))
    shots("reply-with-canned-response-and-attachment")
    _move(page, "Wait on customer")
    assert "is now waiting on customer" in _messages(page)
    assert "router-config.txt" in page.locator("#attachments-group").inner_text()
    assert "could you send us the router's system log" in page.locator("#messages-group").inner_text()
    shots("waiting-on-customer")

    _move(page, "Start")
    assert page.locator(".desk-transitions-top .desk-status").inner_text() == "Status: In progress"
    shots("back-in-progress")
    _move(page, "Resolve")
    assert "is now resolved" in _messages(page)
    assert page.locator(".desk-transitions-top button.desk-move").all_inner_texts() == ["Reopen", "Close"]
    shots("resolved")

    ticket.refresh_from_db()
    assert ticket.status == "resolved" and ticket.assignee.username == "a-support_agent"
    assert list(
        ticket.timeline.filter(kind="status_changed").order_by("created_at", "id").values_list("data__new", flat=True)
    ) == ["in_progress", "waiting", "in_progress", "resolved"]
    reply_row = ticket.messages.get(body__contains="system log")
    assert [a.filename for a in reply_row.attachments.all()] == ["router-config.txt"]

    # export the filtered list: resolved tickets assigned to me, as CSV
    with page.expect_navigation():
        page.goto(f"{base}/admin/tickets/ticket/?status__exact=resolved&q=Lindqvist")
    assert page.locator("#result_list tbody tr").count() == 1
    shots("filtered-list")
    with page.expect_navigation():
        page.click(".object-tools a.export_link")
    page.select_option("#id_format", label="csv")
    shots("export-form")
    with page.expect_download() as download_info:
        page.click(".submit-row input[type=submit]")
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    assert [r["number"] for r in rows] == [ticket.number]
    assert rows[0]["status"] == "resolved" and rows[0]["assignee__username"] == "a-support_agent"
    assert Ticket.objects.filter(tenant=world.tenant("a")).count() == 2  # the export listed one of two: the filter held


@pytest.mark.parametrize("width", [1280, 1440])
def test_changelists_fit_the_screen(transactional_db, live_server, browser_page, shots, width):
    """The ticket and alert changelists (their widest) show every column without a sideways scroll."""
    from apps.alerts import services as alert_services
    from apps.tickets import services

    world = build_world()
    requester = world.user("a", "customer")
    for i in range(3):
        services.ticket_create(
            actor=requester, subject=f"A rather long subject line about the VPN gateway in office {i} dropping", message="x"
        )
        alert_services.alert_raise(
            tenant=world.tenant("a"),
            alert_type="external",
            severity="critical",
            source="manual",
            title=f"https://very-long-hostname-{i}.customer.example.com/health is down since the last deploy",
            labels={"instance": f"web-{i}"},
        )
    page, base = browser_page, live_server.url
    _login(page, base, "platform-admin")  # platform staff see the most columns (tenant)
    page.set_viewport_size({"width": width, "height": 900})
    for path, name in (("/admin/tickets/ticket/", "tickets"), ("/admin/alerts/alert/", "alerts")):
        page.goto(base + path)
        overflow = page.evaluate(
            "() => { const r = document.querySelector('#changelist .results');"
            " return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth, window.innerWidth]; }"
        )
        page.screenshot(path=str(shots.folder / f"{name}-{width}.png"), full_page=True)
        assert overflow[0] <= overflow[1] + 1 and overflow[2] <= overflow[3] + 1, (name, width, overflow)
