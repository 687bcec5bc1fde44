"""The ticket desk in the admin: status buttons and actions, queues, search by customer, replies
with attachments, canned responses, CSV/XLSX export of the filtered changelist."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.tickets import services
from apps.tickets.canned import CannedResponse, render_canned
from apps.tickets.choices import TicketStatus
from apps.tickets.models import Ticket, TicketAttachment, TicketMessage

CHANGELIST = "admin:tickets_ticket_changelist"


def _form_data(page) -> dict:
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in ("subject", "priority", "tags", "metadata")}
    data["assignee"] = form["assignee"].value() or ""
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    return data


def _customer_ticket(world, subject="Printer on fire", **kwargs):
    """A ticket opened by tenant A's customer (its requester is a-customer)."""
    return services.ticket_create(actor=world.user("a", "customer"), subject=subject, message="please help", **kwargs)


def _change(client, ticket):
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    return url, _form_data(client.get(url))


def test_change_page_offers_every_allowed_move_as_a_button(world, client):
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "support_agent"))
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    html = page.content.decode()
    for value in ("in_progress", "waiting", "resolved", "closed"):
        assert f'name="_status" value="{value}"' in html
    assert 'value="open"' not in html.split('id="ticket_form"')[1].split("</form>")[0].split("desk-transitions")[1]


def test_status_buttons_walk_the_ticket_and_stay_on_the_page(world, client):
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "support_agent"))
    for target in ("in_progress", "waiting", "in_progress", "resolved", "open", "closed"):
        url, data = _change(client, ticket)
        answer = client.post(url, {**data, "_status": target})
        assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
        assert answer["Location"] == url
        ticket.refresh_from_db()
        assert ticket.status == target
    assert list(
        ticket.timeline.filter(kind="status_changed").order_by("created_at", "id").values_list("data__new", flat=True)
    ) == ["in_progress", "waiting", "in_progress", "resolved", "open", "closed"]


def test_a_refused_move_is_a_message_on_the_page_not_a_500(world, client):
    ticket = _customer_ticket(world)
    services.ticket_change_status(ticket, actor=world.user("a", "admin"), status="resolved")
    client.force_login(world.user("a", "support_agent"))
    url, data = _change(client, ticket)
    answer = client.post(url, {**data, "_status": "waiting"})  # resolved → waiting is not a move
    assert answer.status_code == 200
    assert "cannot become waiting" in answer.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


def test_viewer_gets_no_buttons_and_cannot_move(world, client):
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "viewer"))
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    assert 'name="_status"' not in client.get(url).content.decode()
    client.post(url, {"_status": "resolved", "subject": "x", "priority": "normal", "tags": "[]", "metadata": "{}"})
    ticket.refresh_from_db()
    assert ticket.status == "open"


@pytest.mark.parametrize(
    ("action", "start", "expected"),
    [
        ("start", "open", "in_progress"),
        ("wait_on_customer", "in_progress", "waiting"),
        ("reopen", "resolved", "open"),
        ("resolve", "waiting", "resolved"),
        ("close", "open", "closed"),
    ],
)
def test_status_actions_call_the_service(world, client, action, start, expected):
    ticket = _customer_ticket(world)
    admin_user = world.user("a", "admin")
    if start != "open":
        services.ticket_change_status(ticket, actor=admin_user, status=start)
    client.force_login(world.user("a", "support_agent"))
    answer = client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [ticket.pk]}, follow=True)
    ticket.refresh_from_db()
    assert ticket.status == expected
    assert "now" in answer.content.decode()


def test_status_action_refusal_is_reported(world, client):
    ticket = _customer_ticket(world)
    services.ticket_change_status(ticket, actor=world.user("a", "admin"), status="closed")
    client.force_login(world.user("a", "support_agent"))
    answer = client.post(reverse(CHANGELIST), {"action": "wait_on_customer", "_selected_action": [ticket.pk]}, follow=True)
    assert "cannot become waiting" in answer.content.decode()


def _listed(client, **params) -> set[int]:
    answer = client.get(reverse(CHANGELIST), params)
    assert answer.status_code == 200
    return {t.pk for t in answer.context["cl"].result_list}


def test_queues_mine_unassigned_team_breached_at_risk(world, client):
    agent, other = world.user("a", "support_agent"), world.user("a", "operator")
    mine = _customer_ticket(world, subject="mine")
    services.ticket_assign(mine, actor=agent, assignee=agent)
    teammate = _customer_ticket(world, subject="teammate's")
    services.ticket_assign(teammate, actor=agent, assignee=other)
    nobody = _customer_ticket(world, subject="nobody's")
    done = _customer_ticket(world, subject="done and unassigned")
    services.ticket_change_status(done, actor=agent, status="resolved")
    breached = _customer_ticket(world, subject="late")
    Ticket.objects.filter(pk=breached.pk).update(resolution_breached=True, assignee=agent)
    risky = _customer_ticket(world, subject="soon late")
    Ticket.objects.filter(pk=risky.pk).update(sla_at_risk=True, assignee=other)
    client.force_login(agent)
    assert _listed(client, queue="mine") == {mine.pk, breached.pk}
    assert _listed(client, queue="unassigned") == {nobody.pk}
    assert _listed(client, queue="team") == {mine.pk, teammate.pk, breached.pk, risky.pk}
    assert _listed(client, queue="breached") == {breached.pk}
    assert _listed(client, queue="at_risk") == {risky.pk}


def test_search_by_customer_name_email_and_organization(world, client):
    requester = world.user("a", "customer")
    requester.first_name, requester.last_name, requester.email = "Greta", "Lindqvist", "greta@customer-a.example"
    requester.save()
    ticket = _customer_ticket(world, subject="Unrelated words")
    other = services.ticket_create(actor=world.user("a", "admin"), subject="Something else", message="x", target_type="platform")
    client.force_login(world.user("a", "support_agent"))
    assert _listed(client, q="greta lindqvist") == {ticket.pk}
    assert _listed(client, q="GRETA@customer-a") == {ticket.pk}
    assert _listed(client, q="Customer of A") == {ticket.pk}
    assert _listed(client, q=ticket.number.lower()) == {ticket.pk}
    assert other.pk in _listed(client, q="something")


def test_reply_with_attachments_goes_through_the_service(world, client):
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "support_agent"))
    url, data = _change(client, ticket)
    files = [
        SimpleUploadedFile("log.txt", b"line 1\n", content_type="text/plain"),
        SimpleUploadedFile("shot.png", b"\x89PNG fake but named png", content_type="image/png"),
    ]
    answer = client.post(url, {**data, "reply": "See the attached log.", "reply_attachments": files})
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    message = TicketMessage.objects.get(ticket=ticket, body="See the attached log.")
    assert sorted(TicketAttachment.objects.filter(message=message).values_list("filename", flat=True)) == ["log.txt", "shot.png"]


def test_reply_attachment_over_the_api_limit_is_refused_on_the_field(world, client, settings):
    settings.TICKETS_ATTACHMENT_MAX_BYTES = 10
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "support_agent"))
    url, data = _change(client, ticket)
    big = SimpleUploadedFile("big.txt", b"x" * 11, content_type="text/plain")
    answer = client.post(url, {**data, "reply": "too big", "reply_attachments": [big]})
    assert answer.status_code == 200
    assert "the limit is 10 bytes" in str(answer.context["adminform"].form.errors["reply_attachments"])
    assert not TicketMessage.objects.filter(body="too big").exists()
    exe = SimpleUploadedFile("run.exe", b"MZ", content_type="application/octet-stream")
    answer = client.post(url, {**data, "reply": "exe", "reply_attachments": [exe]})
    assert "is not allowed" in answer.content.decode()


def test_attachments_need_a_message(world, client):
    ticket = _customer_ticket(world)
    client.force_login(world.user("a", "support_agent"))
    url, data = _change(client, ticket)
    answer = client.post(url, {**data, "reply_attachments": [SimpleUploadedFile("a.txt", b"a")]})
    assert answer.status_code == 200 and "Write a message" in answer.content.decode()


# -- canned responses -----------------------------------------------------------------------
def test_canned_response_is_rendered_for_the_ticket_in_the_reply_box(world, client):
    requester = world.user("a", "customer")
    requester.first_name, requester.last_name = "Greta", "Lindqvist"
    requester.save()
    ticket = _customer_ticket(world)
    CannedResponse.objects.create(
        tenant=world.tenant("a"), title="Thanks", body="Hello {{ customer.name }}, {{ ticket.number }} is with {{agent.name}}."
    )
    CannedResponse.objects.create(tenant=world.tenant("b"), title="B's secret wording", body="b")
    agent = world.user("a", "support_agent")
    client.force_login(agent)
    html = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert f'data-text="Hello Greta Lindqvist, {ticket.number} is with {agent.username}."' in html
    assert "B&#x27;s secret wording" not in html and "B's secret wording" not in html


def test_canned_placeholders_are_a_closed_list_not_a_template(world):
    ticket = _customer_ticket(world)
    row = CannedResponse(
        tenant=world.tenant("a"), title="x", body="{{ ticket.tenant.secret_key }} {% load x %} {{ ticket.number }}"
    )
    with pytest.raises(ValidationError, match="Unknown placeholder"):
        row.full_clean()
    # rendering never walks attributes or runs tags: unknown names and tags stay as typed
    text = render_canned(row.body, ticket=ticket, agent=None)
    assert text == f"{{{{ ticket.tenant.secret_key }}}} {{% load x %}} {ticket.number}"


def test_canned_response_admin_refuses_unknown_placeholder(world, client):
    client.force_login(world.user("a", "admin"))
    answer = client.post(
        reverse("admin:tickets_cannedresponse_add"), {"title": "Bad", "body": "{{ user.password }}", "is_active": "on"}
    )
    assert answer.status_code == 200 and "Unknown placeholder" in answer.content.decode()
    answer = client.post(
        reverse("admin:tickets_cannedresponse_add"), {"title": "Good", "body": "Hi {{ customer.name }}", "is_active": "on"}
    )
    assert answer.status_code == 302
    assert CannedResponse.objects.get(title="Good").tenant == world.tenant("a")


# -- export ---------------------------------------------------------------------------------
def _export(client, fmt: int, **params):
    url = reverse("admin:tickets_ticket_export")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page = client.get(f"{url}?{query}")
    assert page.status_code == 200
    form = page.context["form"]
    data = {"format": fmt, **{name: "on" for name in form.fields if name.startswith("ticketresource_")}}
    return client.post(f"{url}?{query}", {**data, "resource": 0})


def test_export_csv_is_the_filtered_changelist_of_own_tenant(world, client):
    agent = world.user("a", "support_agent")
    mine = _customer_ticket(world, subject="mine")
    services.ticket_assign(mine, actor=agent, assignee=agent)
    _customer_ticket(world, subject="not mine")
    services.ticket_create(actor=world.user("b", "customer"), subject="tenant B's", message="x")
    client.force_login(agent)
    answer = _export(client, 0, queue="mine")
    assert answer.status_code == 200, answer.content[:500]
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [r["number"] for r in rows] == [mine.number]
    everything = _export(client, 0).content.decode("utf-8-sig")
    assert "not mine" in everything and "tenant B" not in everything


def test_export_xlsx(world, client):
    from openpyxl import load_workbook

    ticket = _customer_ticket(world, subject="in the sheet")
    client.force_login(world.user("a", "viewer"))
    answer = _export(client, 1)
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert ticket.number in values and "in the sheet" in values


def test_add_message_names_the_ticket_number(world, client):
    client.force_login(world.user("a", "support_agent"))
    answer = client.post(
        reverse("admin:tickets_ticket_add"),
        {
            "subject": "Newcomer: VPN",
            "priority": "normal",
            "target_type": "platform",
            "tags": "[]",
            "metadata": "{}",
            "message": "first words",
        },
        follow=True,
    )
    ticket = Ticket.objects.get(subject="Newcomer: VPN")
    text = answer.content.decode()
    assert f"{ticket.number} Newcomer: VPN" in text and "“ Newcomer" not in text
    assert ticket.status == TicketStatus.OPEN
