"""An organization's own OpenID Connect provider (SsoProvider): its sign-ins use only its own
organization's mappings, never link by e-mail, and its client secret is stored encrypted."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from apps.core.choices import OrgKind, Role
from apps.core.crypto import PLACEHOLDER
from apps.tenants.models import Membership, SsoIdentity, SsoProvider, SsoRoleMapping
from apps.tenants.sso.services import sso_provider_save
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

from .conftest import ORG_CLIENT_ID, ORG_CLIENT_SECRET, provider_login
from .test_callback import messages_of

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants(db):
    return {
        "platform": OrganizationFactory(kind=OrgKind.PLATFORM, slug="platform", name="Platform"),
        "a": OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-a", name="Tenant A"),
        "b": OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-b", name="Tenant B"),
    }


@pytest.fixture
def b_provider(settings, oidc_provider, tenants):
    settings.PORTAL_SSO_ENABLED = False  # no platform provider: only tenant B's own
    issuer = oidc_provider.issuer
    provider = SsoProvider(
        organization=tenants["b"], name="B Corp ID", slug="b-corp", issuer=issuer, client_id=ORG_CLIENT_ID,
        authorization_endpoint=f"{issuer}/authorize/", token_endpoint=f"{issuer}/token/",
        userinfo_endpoint=f"{issuer}/userinfo/", jwks_endpoint=f"{issuer}/.well-known/jwks.json",
    )
    return sso_provider_save(provider, actor=None, secret=ORG_CLIENT_SECRET)


def org_sign_in(client, username, slug="b-corp"):
    start = client.get(f"/admin/sso/{slug}/login/?next=/admin/")
    assert start.status_code == 302
    if not start["Location"].startswith("http"):
        return start
    return client.get(provider_login(start["Location"], username, stop_at="http://testserver/").removeprefix("http://testserver"))


def test_client_secret_is_stored_encrypted(b_provider):
    stored = SsoProvider.objects.values_list("client_secret", flat=True).get()
    assert stored.startswith("v") and ORG_CLIENT_SECRET not in stored
    assert SsoProvider.objects.get().get_secret() == ORG_CLIENT_SECRET


def test_org_provider_grants_only_its_own_organization(client, b_provider, tenants):
    SsoRoleMapping.objects.create(organization=tenants["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    SsoRoleMapping.objects.create(organization=tenants["b"], claim="groups", value="ops-admins", role=Role.VIEWER)
    response = org_sign_in(client, "dave")
    assert response["Location"] == "/admin/"
    dave = User.objects.get(username="dave")
    # dave's groups match tenant A's mapping too, but B's provider speaks only for B
    assert {m.organization.slug: m.role for m in Membership.objects.filter(user=dave)} == {"tenant-b": Role.VIEWER}
    assert client.get("/admin/").status_code == 200


def test_org_provider_with_no_mapping_of_its_own_is_refused(client, b_provider, tenants):
    SsoRoleMapping.objects.create(organization=tenants["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    response = org_sign_in(client, "alice")
    assert response["Location"].startswith("/admin/login/")
    assert any("none of your groups is mapped" in m for m in messages_of(response))
    assert not User.objects.filter(username="alice").exists() and not SsoIdentity.objects.exists()


def test_org_provider_never_links_an_existing_account_by_email(client, b_provider, tenants):
    platform_admin = UserFactory(username="pa", email="alice@corp.example")
    MembershipFactory(user=platform_admin, organization=tenants["platform"], role=Role.ADMIN)
    SsoRoleMapping.objects.create(organization=tenants["b"], claim="groups", value="ops-admins", role=Role.VIEWER)
    org_sign_in(client, "alice")
    identity = SsoIdentity.objects.get()
    assert identity.user != platform_admin and identity.user.username == "alice"
    assert int(client.session["_auth_user_id"]) == identity.user.pk


def test_switched_off_or_unknown_provider_is_refused(client, b_provider, tenants):
    SsoRoleMapping.objects.create(organization=tenants["b"], claim="groups", value="ops-admins", role=Role.VIEWER)
    start = client.get("/admin/sso/b-corp/login/")
    SsoProvider.objects.update(is_active=False)  # switched off while the person is at the provider
    back = provider_login(start["Location"], "alice", stop_at="http://testserver/").removeprefix("http://testserver")
    response = client.get(back)
    assert any("switched off" in m for m in messages_of(response)) and "_auth_user_id" not in client.session
    unknown = client.get("/admin/sso/nobody/login/")
    assert unknown["Location"].startswith("/admin/login/")


def test_login_page_shows_an_organization_button_only_when_named(client, b_provider):
    assert b"B Corp ID" not in client.get("/admin/login/").content
    page = client.get("/admin/login/?sso=b-corp&next=/admin/")
    assert b"Sign in with B Corp ID" in page.content and b"/admin/sso/b-corp/login/?next=/admin/" in page.content


def test_platform_admin_manages_providers_tenant_owner_only_reads(client, tenants, oidc_provider):
    admin_user = UserFactory(username="plat-admin")
    MembershipFactory(user=admin_user, organization=tenants["platform"], role=Role.ADMIN)
    client.force_login(admin_user)
    issuer = oidc_provider.issuer
    form = {"organization": tenants["a"].pk, "name": "A ID", "slug": "a-id", "issuer": issuer, "client_id": "a-client",
            "authorization_endpoint": f"{issuer}/authorize/", "token_endpoint": f"{issuer}/token/",
            "userinfo_endpoint": f"{issuer}/userinfo/", "jwks_endpoint": f"{issuer}/.well-known/jwks.json",
            "scopes": "openid email", "is_active": "on", "client_secret_input": "first-secret"}
    assert client.post("/admin/tenants/ssoprovider/add/", form).status_code == 302
    provider = SsoProvider.objects.get(slug="a-id")
    assert provider.get_secret() == "first-secret" and "first-secret" not in provider.client_secret
    change = client.get(f"/admin/tenants/ssoprovider/{provider.pk}/change/")
    assert b"first-secret" not in change.content and PLACEHOLDER.encode() in change.content
    client.post(f"/admin/tenants/ssoprovider/{provider.pk}/change/", {**form, "name": "A Corp ID", "client_secret_input": PLACEHOLDER})
    provider.refresh_from_db()
    assert (provider.name, provider.get_secret()) == ("A Corp ID", "first-secret")
    bad = client.post("/admin/tenants/ssoprovider/add/", {**form, "slug": "a-2", "organization": tenants["b"].pk, "scopes": "email"})
    assert bad.status_code == 200 and b"must include openid" in bad.content

    owner = UserFactory(username="a-owner")
    MembershipFactory(user=owner, organization=tenants["a"], role=Role.OWNER)
    client.force_login(owner)
    assert client.get("/admin/tenants/ssoprovider/").status_code == 200
    assert client.get("/admin/tenants/ssoprovider/add/").status_code == 403
    assert client.post(f"/admin/tenants/ssoprovider/{provider.pk}/change/", {**form, "name": "hijacked"}).status_code == 403
    assert client.post("/admin/tenants/ssorolemapping/add/", {"organization": tenants["a"].pk, "claim": "groups",
                                                              "value": "x", "role": "owner"}).status_code == 403
    assert not SsoRoleMapping.objects.exists()


def test_key_rotation_reencrypts_the_client_secret(b_provider, settings):
    import io

    from django.core.management import call_command

    from apps.core import crypto

    old_version = crypto.current_version()
    settings.PORTAL_ENCRYPTION_KEYS = f"{old_version + 1}:{crypto.generate_key()},{settings.PORTAL_ENCRYPTION_KEYS}"
    call_command("rotate_encryption_key", stdout=io.StringIO())
    b_provider.refresh_from_db()
    assert b_provider.client_secret.startswith(f"v{old_version + 1}$") and b_provider.get_secret() == ORG_CLIENT_SECRET
