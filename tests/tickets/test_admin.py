"""Admin change form of a ticket: a reply box (ticket_reply) and saves that never 500."""

from django.urls import reverse

from apps.tickets import services
from apps.tickets.choices import TicketStatus
from apps.tickets.models import TicketMessage


def _form_data(page) -> dict:
    """The change form as the browser would post it (field values and inline management forms)."""
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in ("subject", "priority", "tags", "metadata")}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    return data


def _ticket(world, **kwargs):
    return services.ticket_create(actor=world.user("a", "support_agent"), subject="VPN down", message="since 9:00",
                                  target_type="platform", **kwargs)


def test_reply_box_adds_public_reply_and_first_response(world, client):
    ticket = _ticket(world)
    agent = world.user("a", "support_agent")
    client.force_login(agent)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    data = _form_data(client.get(url))
    r = client.post(url, {**data, "reply": "Looking into it now."})
    assert r.status_code == 302, r.context["adminform"].form.errors
    reply = TicketMessage.objects.get(ticket=ticket, body="Looking into it now.")
    assert reply.author == agent and reply.is_internal is False
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None


def test_reply_box_internal_note_does_not_count_as_first_response(world, client):
    ticket = _ticket(world)
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    data = _form_data(client.get(url))
    assert client.post(url, {**data, "reply": "Customer is on the old client.", "reply_is_internal": "on"}).status_code == 302
    assert TicketMessage.objects.get(ticket=ticket, body="Customer is on the old client.").is_internal is True
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None


def test_saving_ticket_fields_without_reply_adds_no_message(world, client):
    # the read-only inlines' formsets were never saved, so every change save raised (500)
    ticket = _ticket(world)
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    data = _form_data(client.get(url))
    r = client.post(url, {**data, "subject": "VPN down in Berlin"})
    assert r.status_code == 302, r.context["adminform"].form.errors
    ticket.refresh_from_db()
    assert ticket.subject == "VPN down in Berlin" and ticket.messages.count() == 1


def test_closed_ticket_offers_no_reply_box(world, client):
    ticket = _ticket(world)
    admin = world.user("a", "admin")
    for status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        services.ticket_change_status(ticket, actor=admin, status=status)
    client.force_login(admin)
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert page.status_code == 200 and "reply" not in page.context["adminform"].form.fields
