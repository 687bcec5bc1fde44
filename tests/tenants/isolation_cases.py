from apps.core.choices import Role
from apps.tenants.models import CustomerOrganization, Membership, Organization, Tenant
from tests.isolation import IsolationCase

CASES = [
    IsolationCase(
        name="tenants.organization",
        make=lambda w, key: w.tenant(key),
        api_list="organization-list",
        api_detail="organization-detail",
        lookup="slug",
        admin_model=Organization,
        create_payload=lambda w, foreign: {"kind": "customer", "name": "Sneaky", "parent": foreign.slug},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="tenants.tenant",
        make=lambda w, key: Tenant.objects.get(pk=w.tenant(key).pk),
        api_list="tenant-list",
        api_detail="tenant-detail",
        lookup="slug",
        admin_model=Tenant,
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="tenants.customerorganization",
        make=lambda w, key: CustomerOrganization.objects.get(pk=w.orgs[f"{key}-customer"].pk),
        admin_model=CustomerOrganization,
    ),
    IsolationCase(
        name="tenants.membership",
        make=lambda w, key: Membership.objects.get(user=w.user(key, Role.VIEWER)),
        api_list="membership-list",
        api_detail="membership-detail",
        admin_model=Membership,
        create_payload=lambda w, foreign: {"organization": foreign.organization.slug, "role": "viewer", "new_username": "intruder"},
        patch_payload={"role": "owner"},
    ),
]


def _partner(w, key):
    from apps.core.choices import OrgKind
    from apps.tenants.models import Partner

    if key == "a":
        return Partner.objects.get(pk=w.orgs["partner"].pk)
    org, _ = Organization.objects.get_or_create(slug=f"partner-of-{key}", defaults={"kind": OrgKind.PARTNER, "name": f"Partner of {key}"})
    org.served_tenants.add(w.tenant(key))
    return Partner.objects.get(pk=org.pk)


CASES.append(IsolationCase(name="tenants.partner", make=_partner, admin_model=__import__("apps.tenants.models", fromlist=["Partner"]).Partner))


def _invitation(w, key):
    import hashlib
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from apps.tenants.models import Invitation

    return Invitation.objects.create(
        organization=w.tenant(key), tenant=w.tenant(key), email=f"guest-{key}@example.test", role=Role.VIEWER,
        token_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(), expires_at=timezone.now() + timedelta(days=1),
        invited_by=w.user(key, Role.ADMIN),
    )


CASES.append(IsolationCase(
    name="tenants.invitation",
    make=_invitation,
    api_list="invitation-list",
    api_detail="invitation-detail",
    admin_model=__import__("apps.tenants.models", fromlist=["Invitation"]).Invitation,
    create_payload=lambda w, foreign: {"organization": foreign.organization.slug, "email": "sneaky@example.test", "role": "viewer"},
    patch_payload={"role": "owner"},
))


# SSO (apps/tenants/sso): an organization's managers read their own mappings and policy; only platform staff write them.
def _sso_mapping(w, key):
    from apps.tenants.models import SsoRoleMapping

    return SsoRoleMapping.objects.create(organization=w.tenant(key), claim="groups", value=f"staff-{key}", role=Role.VIEWER)


def _sso_policy(w, key):
    from apps.tenants.models import SsoPolicy

    return SsoPolicy.objects.get_or_create(organization=w.tenant(key))[0]


CASES.append(IsolationCase(name="tenants.ssorolemapping", make=_sso_mapping, admin_model=__import__("apps.tenants.models", fromlist=["SsoRoleMapping"]).SsoRoleMapping))
CASES.append(IsolationCase(name="tenants.ssopolicy", make=_sso_policy, admin_model=__import__("apps.tenants.models", fromlist=["SsoPolicy"]).SsoPolicy))


def _sso_provider(w, key):
    from apps.tenants.models import SsoProvider

    base = f"https://id.{key}.example.test/o"
    return SsoProvider.objects.get_or_create(
        organization=w.tenant(key),
        defaults={"name": f"ID {key}", "slug": f"id-{key}", "issuer": base, "client_id": key, "authorization_endpoint": f"{base}/authorize/",
                  "token_endpoint": f"{base}/token/", "userinfo_endpoint": f"{base}/userinfo/", "jwks_endpoint": f"{base}/jwks/"},
    )[0]


CASES.append(IsolationCase(name="tenants.ssoprovider", make=_sso_provider, admin_model=__import__("apps.tenants.models", fromlist=["SsoProvider"]).SsoProvider))
def _service_account(w, key):
    from apps.tenants.tokens.services import service_account_create

    return service_account_create(actor=None, organization=w.tenant(key), name=f"bot-{key}", role=Role.VIEWER)


def _api_token(w, key):
    from apps.tenants.tokens.services import api_token_create

    return api_token_create(actor=w.user(key, Role.VIEWER), organization=w.tenant(key), name=f"token-{key}")[0]


def _service_account_of_b(w):
    from apps.tenants.models import ServiceAccount

    return ServiceAccount.objects.filter(organization=w.tenant("b")).first() or _service_account(w, "b")


CASES.append(IsolationCase(
    name="tenants.serviceaccount",
    make=_service_account,
    api_list="serviceaccount-list",
    api_detail="serviceaccount-detail",
    admin_model=__import__("apps.tenants.models", fromlist=["ServiceAccount"]).ServiceAccount,
    create_payload=lambda w, foreign: {"organization": foreign.organization.slug, "name": "sneaky", "role": "viewer"},
    patch_payload={"role": "owner", "is_active": False},
))
CASES.append(IsolationCase(
    name="tenants.apitoken",
    make=_api_token,
    api_list="apitoken-list",
    api_detail="apitoken-detail",
    admin_model=__import__("apps.tenants.models", fromlist=["ApiToken"]).ApiToken,
    # a token for tenant B's service account
    create_payload=lambda w, foreign: {"name": "sneaky", "service_account": _service_account_of_b(w).pk},
    patch_payload={"role": "owner"},
))
