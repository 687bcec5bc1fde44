import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.choices import OrgKind, Role
from apps.core.tenancy import acting, choose_organization
from apps.tenants import services
from apps.tenants.models import Membership, Organization
from tests.factories import MembershipFactory


def test_tenant_admin_adds_customer_to_own_tenant_only(world):
    admin = world.user("a", "admin")
    org = services.organization_create(actor=admin, kind=OrgKind.CUSTOMER, name="Initech")
    assert org.parent == world.tenant("a")
    with pytest.raises(PermissionDenied):
        services.organization_create(actor=admin, kind=OrgKind.CUSTOMER, name="X", parent=world.tenant("b"))
    with pytest.raises(PermissionDenied):
        services.organization_create(actor=admin, kind=OrgKind.TENANT, name="New tenant")


def test_platform_admin_creates_tenants_and_partners(world):
    pa = world.user("platform", "admin")
    t = services.organization_create(actor=pa, kind=OrgKind.TENANT, name="Gamma Corp")
    assert t.slug == "gamma-corp"
    p = services.organization_create(actor=pa, kind=OrgKind.PARTNER, name="MSP", served_tenants=[t])
    assert list(p.served_tenants.all()) == [t]
    with pytest.raises(ValidationError):
        services.organization_create(actor=pa, kind=OrgKind.PARTNER, name="Bad", served_tenants=[p])
    with pytest.raises(ValidationError, match="only one"):
        services.organization_create(actor=pa, kind=OrgKind.PLATFORM, name="Second platform")


def test_bad_timezone_is_a_clear_error(world):
    with pytest.raises(ValidationError, match="IANA"):
        services.organization_create(actor=world.user("platform", "admin"), kind=OrgKind.TENANT, name="T", timezone="Mars/Base")


def test_cannot_grant_role_above_own(world):
    admin = world.user("a", "admin")
    with pytest.raises(PermissionDenied, match="above your own"):
        services.membership_create(actor=admin, organization=world.tenant("a"), role=Role.OWNER, username="newbie")
    m = services.membership_create(actor=admin, organization=world.tenant("a"), role=Role.OPERATOR, username="newbie")
    assert m.user.is_staff and not m.user.has_usable_password()


def test_operator_cannot_manage_members(world):
    with pytest.raises(PermissionDenied):
        services.membership_create(actor=world.user("a", "operator"), organization=world.tenant("a"), role=Role.VIEWER, username="x")


def test_customer_org_members_are_customers(world):
    with pytest.raises(ValidationError, match="customer role"):
        services.membership_create(actor=world.user("a", "admin"), organization=world.orgs["a-customer"], role=Role.VIEWER, username="c2")


def test_cannot_remove_self_or_change_own_role(world):
    admin = world.user("a", "admin")
    own = Membership.objects.get(user=admin)
    with pytest.raises(PermissionDenied):
        services.membership_delete(own, actor=admin)
    with pytest.raises(PermissionDenied):
        services.membership_update(own, actor=admin, role=Role.VIEWER)


def test_user_acts_within_chosen_organization(world):
    user = world.user("a", "viewer")
    MembershipFactory(user=user, organization=world.tenant("b"), role=Role.ADMIN)
    assert acting(user).organization_slug == "tenant-a" or acting(user).organization_slug == "tenant-b"
    choose_organization(user, "tenant-b")
    ctx = acting(user)
    assert ctx.tenant_id == world.tenant("b").pk and ctx.role == Role.ADMIN
    choose_organization(user, "tenant-a")
    assert acting(user).role == Role.VIEWER
    choose_organization(user, "platform")
    with pytest.raises(PermissionDenied):
        acting(user)


def test_suspended_organization_grants_nothing(world):
    user = world.user("b", "admin")
    Organization.objects.filter(pk=world.tenant("b").pk).update(status="suspended")
    assert acting(user).role is None
    assert not Organization.objects.visible_to(user).exists()


def test_admin_add_buttons_follow_the_rules(world, client):
    from django.urls import reverse

    client.force_login(world.user("a", "admin"))
    assert client.get(reverse("admin:tenants_tenant_add")).status_code == 403
    assert client.get(reverse("admin:tenants_customerorganization_add")).status_code == 200
    client.force_login(world.user("platform", "admin"))
    assert client.get(reverse("admin:tenants_tenant_add")).status_code == 200


def test_admin_creates_customer_through_service(world, client):
    from django.urls import reverse

    client.force_login(world.user("a", "admin"))
    r = client.post(
        reverse("admin:tenants_customerorganization_add"),
        {"name": "Hooli", "slug": "hooli", "parent": world.tenant("a").pk, "status": "active", "timezone": "UTC", "settings": "{}",
         "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0},
    )
    assert r.status_code == 302, (list(r.context["errors"]), [fs.formset.prefix for fs in r.context["inline_admin_formsets"]])
    org = Organization.objects.get(slug="hooli")
    assert org.parent == world.tenant("a") and org.kind == OrgKind.CUSTOMER
    assert org.history.count() == 1  # audited
