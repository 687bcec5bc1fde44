"""Demo tickets: an SLA policy per priority for acme, a business calendar, and a few tickets
opened by acme's customer (through the services, so numbers, clocks and events are real)."""

from apps.core.choices import Role
from apps.tenants.models import Membership

from . import services
from .models import BusinessCalendar, SlaPolicy, Ticket

TARGETS = {"low": (480, 4800), "normal": (240, 2400), "high": (60, 480), "urgent": (30, 240), "critical": (15, 120)}


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    cal, _ = BusinessCalendar.objects.get_or_create(
        tenant=acme, name="Office hours", defaults={
            "timezone": acme.timezone, "is_default": True,
            "working_hours": {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        },
    )
    for priority, (fr, res) in TARGETS.items():
        SlaPolicy.objects.get_or_create(
            tenant=acme, priority=priority, is_active=True,
            defaults={"name": f"{priority.title()} SLA", "first_response_minutes": fr, "resolution_minutes": res, "calendar": cal},
        )
    if Ticket.objects.filter(tenant=acme).exists():
        return
    customer_org = orgs.get("acme-cust-1")
    member = Membership.objects.filter(organization=customer_org, role=Role.CUSTOMER, is_active=True).select_related("user").first() if customer_org else None
    if member is None:
        return
    # sample requests of a customer (none critical: a critical ticket raises an alert, and a first
    # dashboard should not show an outage nobody has)
    for subject, priority in [("Sample: Wi-Fi drops in the meeting room", "high"), ("Sample: invoice shows wrong plan", "low"),
                              ("Sample: intermittent packet loss", "normal")]:
        services.ticket_create(actor=member.user, subject=subject, priority=priority, metadata={"source": "demo"},
                               message=f"{subject[8:]}. Please help. (A sample ticket from seed_demo: reply, move or close it freely.)")
    stdout.write("tickets: demo SLA policies, calendar and 3 tickets for acme\n")
