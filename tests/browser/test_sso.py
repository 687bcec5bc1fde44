"""Single sign-on in a real browser: the admin's SSO button, the test OpenID Connect provider's
login form (django-oauth-toolkit in its own process, tests/sso/provider/), back to the admin."""

import pytest

from apps.core.choices import OrgKind, Role, StaffMfa
from apps.tenants.models import Membership, SsoPolicy, SsoRoleMapping
from tests.factories import OrganizationFactory
from tests.sso.conftest import PASSWORD, oidc_provider, sso_settings  # noqa: F401

pytestmark = pytest.mark.browser


def _sign_in_at_provider(page, base, username):
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.click("#sso-button")
    page.wait_for_selector("#idp-username")  # the provider's own page
    page.fill("#idp-username", username)
    page.fill("#idp-password", PASSWORD)
    page.click("#idp-submit")


def test_staff_signs_in_through_the_provider_and_lands_in_the_admin(live_server, browser_page, shots, transactional_db, sso_settings):  # noqa: F811
    tenant = OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-a", name="Tenant A")
    OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-b", name="Tenant B")
    tenant.require_staff_mfa = StaffMfa.ON
    tenant.save()
    SsoRoleMapping.objects.create(organization=tenant, claim="groups", value="ops-admins", role=Role.OPERATOR)
    SsoPolicy.objects.create(organization=tenant, mfa_amr_values="mfa")  # bob's provider sign-in counts as two-factor
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/")
    assert page.inner_text("#sso-button") == "Sign in with single sign-on"
    shots("login-page")
    _sign_in_at_provider(page, live_server.url, "bob")
    page.wait_for_selector("#site-name")
    shots("admin-after-sso")
    assert page.url.rstrip("/").endswith("/admin")  # straight in: no TOTP page, the provider's amr sufficed
    page.goto(f"{live_server.url}/admin/tenants/organization/")
    listing = page.inner_text("#result_list")
    assert "Tenant A" in listing and "Tenant B" not in listing
    assert Membership.objects.get(user__username="bob").role == Role.OPERATOR


def test_person_without_a_mapping_sees_why_on_the_login_page(live_server, browser_page, shots, transactional_db, sso_settings):  # noqa: F811
    tenant = OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-a", name="Tenant A")
    SsoRoleMapping.objects.create(organization=tenant, claim="groups", value="ops-admins", role=Role.OPERATOR)
    page = browser_page
    _sign_in_at_provider(page, live_server.url, "carol")
    page.wait_for_selector(".messagelist")
    shots("refused")
    assert "/admin/login/" in page.url
    assert "none of your groups is mapped" in page.inner_text(".messagelist")
    assert not Membership.objects.filter(user__username="carol").exists()
