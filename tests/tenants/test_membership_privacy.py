"""Issue 17.2 and 17.3: a tenant admin can neither find nor add another tenant's people through
memberships, and a partner's record shows a tenant only itself among the tenants it serves."""

import pytest
from django.urls import reverse

from apps.core.choices import OrgKind, Role
from apps.tenants.models import Membership
from tests.factories import MembershipFactory, OrganizationFactory


def _post_membership(client, **payload):
    return client.post(reverse("membership-list"), {"organization": "tenant-a", "role": "viewer", **payload}, format="json")


def test_foreign_user_id_is_a_400_that_reveals_nothing(world, api):
    stranger = world.user("b", "viewer")
    client = api.as_user(world.user("a", "admin"))
    foreign = _post_membership(client, user=stranger.pk)
    missing = _post_membership(client, user=stranger.pk + 100000)
    assert foreign.status_code == missing.status_code == 400, foreign.content
    assert foreign.json() == missing.json()  # same answer whether the id exists or not
    assert "invit" in foreign.json()["detail"]
    body = foreign.content.decode()
    assert stranger.username not in body and stranger.email not in body
    assert not Membership.objects.filter(user=stranger, organization=world.tenant("a")).exists()


def test_existing_username_of_a_stranger_is_never_linked(world, api):
    stranger = world.user("b", "viewer")
    answer = _post_membership(api.as_user(world.user("a", "admin")), new_username=stranger.username, email="x@evil.test")
    assert answer.status_code == 400, answer.content
    assert stranger.email not in answer.content.decode()
    assert not Membership.objects.filter(user=stranger, organization=world.tenant("a")).exists()


def test_tenant_admin_adds_a_person_already_within_their_tenant(world, api):
    """Positive control: someone in A's customer organization joins another customer organization of A."""
    second = OrganizationFactory(kind=OrgKind.CUSTOMER, slug="customer-a2", parent=world.tenant("a"))
    person = world.user("a", "customer")
    answer = api.as_user(world.user("a", "admin")).post(
        reverse("membership-list"), {"organization": second.slug, "role": "customer", "user": person.pk}, format="json"
    )
    assert answer.status_code == 201, answer.content
    assert Membership.objects.filter(user=person, organization=second).exists()


def test_platform_admin_adds_anyone(world, api):
    person = world.user("b", "viewer")
    answer = _post_membership(api.as_user(world.user("platform", "admin")), user=person.pk)
    assert answer.status_code == 201, answer.content


def test_membership_answers_never_carry_emails_of_people_out_of_sight(world, api):
    # b-viewer is also a member of A's customer organization: A's admin may see that membership,
    # but the account is a person of tenant B too; no e-mail address is ever printed
    person = world.user("b", "viewer")
    MembershipFactory(user=person, organization=world.orgs["a-customer"], role=Role.CUSTOMER)
    client = api.as_user(world.user("a", "admin"))
    listed = client.get(reverse("membership-list"), {"page_size": 500})
    assert listed.status_code == 200
    assert "@" not in listed.content.decode()


@pytest.fixture
def wide_partner(world):
    partner = world.orgs["partner"]
    partner.served_tenants.add(world.tenant("b"))
    return partner


@pytest.mark.parametrize("role", ["owner", "viewer", "support_agent"])
def test_tenant_staff_see_only_their_tenant_among_a_partners_tenants(world, api, wide_partner, role):
    client = api.as_user(world.user("a", role))
    detail = client.get(reverse("organization-detail", kwargs={"slug": wide_partner.slug}))
    assert detail.status_code == 200, detail.content
    assert detail.json()["served_tenants"] == ["tenant-a"]
    listed = client.get(reverse("organization-list"), {"kind": "partner"})
    assert [o["served_tenants"] for o in listed.json()["results"]] == [["tenant-a"]]
    assert "tenant-b" not in listed.content.decode() + detail.content.decode()


@pytest.mark.parametrize("who", [("partner", "support_agent"), ("platform", "viewer")])
def test_partner_itself_and_platform_see_all_served_tenants(world, api, wide_partner, who):
    detail = api.as_user(world.user(*who)).get(reverse("organization-detail", kwargs={"slug": wide_partner.slug}))
    assert sorted(detail.json()["served_tenants"]) == ["tenant-a", "tenant-b"]


def test_admin_partner_pages_show_a_tenant_only_itself(world, client, wide_partner):
    from apps.tenants import services

    # a history row that names tenant B (a platform admin edits the partner's tenants)
    services.organization_update(wide_partner, actor=world.user("platform", "admin"),
                                 served_tenants=[world.tenant("a"), world.tenant("b")])
    client.force_login(world.user("a", "owner"))
    for model in ("partner", "organization"):
        page = client.get(reverse(f"admin:tenants_{model}_change", args=[wide_partner.pk]))
        assert page.status_code == 200, (model, page.status_code)
        text = page.content.decode()
        assert "Partner P" in text
        assert "Tenant B" not in text and "tenant-b" not in text, model
    # the audit history would name every tenant the partner ever served: not for tenant staff
    history = wide_partner.history.order_by("-history_id").first()
    for url in (reverse("admin:tenants_organization_history", args=[wide_partner.pk]),
                reverse("admin:tenants_organization_simple_history", args=[wide_partner.pk, history.history_id])):
        page = client.get(url)
        assert page.status_code in (403, 404), (url, page.status_code)
        assert "Tenant B" not in page.content.decode()


def test_admin_partner_page_shows_the_partner_all_its_tenants(world, client, wide_partner):
    client.force_login(world.user("platform", "admin"))
    text = client.get(reverse("admin:tenants_partner_change", args=[wide_partner.pk])).content.decode()
    assert "Tenant B" in text


def test_admin_membership_form_refuses_strangers_alike(world, client):
    client.force_login(world.user("a", "admin"))
    stranger = world.user("b", "viewer")
    answers = []
    for user_id in (stranger.pk, stranger.pk + 100000, world.user("partner", "admin").pk):
        page = client.post(reverse("admin:tenants_membership_add"),
                           {"user": user_id, "organization": world.tenant("a").pk, "role": "viewer", "is_active": "on"})
        assert page.status_code == 200, page.status_code  # the form again, with the refusal
        text = page.content.decode()
        assert stranger.email not in text and "b-viewer" not in text
        answers.append(page.context["adminform"].form.errors.get("user"))
    assert answers[0] == answers[1]  # unknown id and another tenant's person: the same answer
    assert answers[2]  # a partner's person (within sight) is refused too: they join by invitation
    assert not Membership.objects.filter(organization=world.tenant("a"), user__in=[stranger, world.user("partner", "admin")]).exists()
