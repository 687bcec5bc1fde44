"""The partner's home on the admin index: the tenants it serves and the tickets escalated to it."""

from __future__ import annotations

from django.urls import reverse

from apps.tickets import services
from apps.tickets.models import Ticket


def test_partner_sees_served_tenants_and_escalated_tickets(world, client):
    agent = world.user("a", "support_agent")
    ticket = services.ticket_create(actor=world.user("a", "customer"), subject="Core switch flapping", message="x")
    services.ticket_escalate(ticket, actor=agent, level=1, reason="needs the MSP", to_partner=world.tenant("partner").slug)
    Ticket.objects.filter(pk=ticket.pk).update(resolution_breached=True)
    services.ticket_create(actor=world.user("a", "customer"), subject="Not escalated", message="x")
    client.force_login(world.user("partner", "support_agent"))
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="partner-dashboard"' in page and "Tenant A" in page and "Tenant B" not in page
    assert ticket.number in page and "Not escalated" not in page
    assert '<span class="desk-sla desk-sla-breached">1</span>' in page


def test_tenant_staff_get_no_partner_panel(world, client):
    client.force_login(world.user("a", "admin"))
    assert 'id="partner-dashboard"' not in client.get(reverse("admin:index")).content.decode()
