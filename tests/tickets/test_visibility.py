"""Who sees which ticket, in the API and in the admin (one policy)."""

from django.urls import reverse

from apps.core.choices import OrgKind, Role
from apps.tickets import services
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def _ids(response):
    return {r["id"] for r in response.json()["results"]}


def test_visibility_per_actor(world, api, client):
    a_cust = services.ticket_create(actor=world.user("a", "customer"), subject="mine", message="m")
    other_org = OrganizationFactory(kind=OrgKind.CUSTOMER, slug="customer-a2", parent=world.tenant("a"))
    other_user = UserFactory(username="a2-customer", is_staff=False)
    MembershipFactory(user=other_user, organization=other_org, role=Role.CUSTOMER)
    a_other = services.ticket_create(actor=other_user, subject="theirs", message="m")
    a_internal = services.ticket_create(actor=world.user("a", "support_agent"), subject="to platform", message="m", target_type="platform")
    b_ticket = services.ticket_create(actor=world.user("b", "support_agent"), subject="b", message="m", target_type="platform")

    seen = {
        who: _ids(api.as_user(user).get(reverse("ticket-list")))
        for who, user in {
            "customer": world.user("a", "customer"),
            "a_staff": world.user("a", "viewer"),
            "partner": world.user("partner", "support_agent"),
            "platform": world.user("platform", "viewer"),
        }.items()
    }
    assert seen["customer"] == {a_cust.pk}
    assert seen["a_staff"] == {a_cust.pk, a_other.pk, a_internal.pk}
    assert seen["partner"] == set()
    assert seen["platform"] == {a_cust.pk, a_other.pk, a_internal.pk, b_ticket.pk}

    # escalated to the partner: now (and only this one) visible to them, in the API and the admin
    services.ticket_escalate(a_internal, actor=world.user("a", "admin"), level=1, reason="needs field team", to_partner="partner-p")
    assert _ids(api.as_user(world.user("partner", "support_agent")).get(reverse("ticket-list"))) == {a_internal.pk}
    client.force_login(world.user("partner", "admin"))
    changelist = client.get(reverse("admin:tickets_ticket_changelist"))
    assert {t.pk for t in changelist.context["cl"].result_list} == {a_internal.pk}
    assert client.get(reverse("admin:tickets_ticket_change", args=[a_cust.pk])).status_code in (302, 403, 404)


def test_customer_never_sees_internal_notes(world, api):
    customer = world.user("a", "customer")
    ticket = services.ticket_create(actor=customer, subject="s", message="first")
    services.ticket_reply(ticket, actor=world.user("a", "support_agent"), body="secret note", is_internal=True)
    services.ticket_reply(ticket, actor=world.user("a", "support_agent"), body="public answer")
    body = api.as_user(customer).get(reverse("ticket-detail", args=[ticket.pk])).json()
    assert [m["body"] for m in body["messages"]] == ["first", "public answer"]
    assert all(e["kind"] in ("created", "status_changed") for e in body["timeline"])
    staff = api.as_user(world.user("a", "viewer")).get(reverse("ticket-detail", args=[ticket.pk])).json()
    assert [m["body"] for m in staff["messages"]] == ["first", "secret note", "public answer"]
    kinds = [e["kind"] for e in staff["timeline"]]
    assert "created" in kinds and "first_response" in kinds


def test_customer_cannot_write_internal_note_or_change_status(world, api):
    customer = world.user("a", "customer")
    ticket = services.ticket_create(actor=customer, subject="s", message="first")
    client = api.as_user(customer)
    r = client.post(reverse("ticket-messages", args=[ticket.pk]), {"body": "x", "is_internal": True}, format="json")
    assert r.status_code == 403
    assert client.post(reverse("ticket-status", args=[ticket.pk]), {"status": "closed"}, format="json").status_code == 403
    assert client.post(reverse("ticket-messages", args=[ticket.pk]), {"body": "more info"}, format="json").status_code == 201
