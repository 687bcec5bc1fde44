"""The shared test world: the platform, tenants A and B, a partner serving A, a customer
organization of each tenant, and a user of every role in each (healthchecks' alice/bob/charlie,
grown to a matrix). `world.user("a", "viewer")`, `world.tenant("b")`."""

from __future__ import annotations

from dataclasses import dataclass, field

from apps.core.choices import OrgKind, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

STAFF_ROLES = [Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.VIEWER]
ALL_TENANT_ROLES = [*STAFF_ROLES, Role.CUSTOMER]


@dataclass
class World:
    orgs: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)

    def tenant(self, key: str):
        return self.orgs[key]

    def user(self, key: str, role: str):
        return self.users[(key, str(role))]

    @property
    def platform(self):
        return self.orgs["platform"]


def build_world() -> World:
    w = World()
    w.orgs["platform"] = OrganizationFactory(kind=OrgKind.PLATFORM, slug="platform", name="Platform")
    for key in ("a", "b"):
        tenant = OrganizationFactory(kind=OrgKind.TENANT, slug=f"tenant-{key}", name=f"Tenant {key.upper()}")
        w.orgs[key] = tenant
        w.orgs[f"{key}-customer"] = OrganizationFactory(
            kind=OrgKind.CUSTOMER, slug=f"customer-{key}", name=f"Customer of {key.upper()}", parent=tenant
        )
        for role in STAFF_ROLES:
            user = UserFactory(username=f"{key}-{role}")
            MembershipFactory(user=user, organization=tenant, role=role)
            w.users[(key, str(role))] = user
        cust = UserFactory(username=f"{key}-customer", is_staff=False)
        MembershipFactory(user=cust, organization=w.orgs[f"{key}-customer"], role=Role.CUSTOMER)
        w.users[(key, str(Role.CUSTOMER))] = cust
    partner = OrganizationFactory(kind=OrgKind.PARTNER, slug="partner-p", name="Partner P")
    partner.served_tenants.add(w.orgs["a"])
    w.orgs["partner"] = partner
    for role in (Role.ADMIN, Role.SUPPORT_AGENT):
        user = UserFactory(username=f"partner-{role}")
        MembershipFactory(user=user, organization=partner, role=role)
        w.users[("partner", str(role))] = user
    for role in (Role.ADMIN, Role.VIEWER):
        user = UserFactory(username=f"platform-{role}")
        MembershipFactory(user=user, organization=w.platform, role=role)
        w.users[("platform", str(role))] = user
    return w
