"""Choices shared by every app: organization kinds and roles."""

from django.db import models


class OrgKind(models.TextChoices):
    PLATFORM = "platform", "Platform"
    TENANT = "tenant", "Tenant"
    PARTNER = "partner", "Partner"
    CUSTOMER = "customer", "Customer"


class StaffMfa(models.TextChoices):
    """Whether an organization's staff must confirm a TOTP device before the admin opens."""

    INHERIT = "inherit", "Portal default (PORTAL_ADMIN_REQUIRE_OTP)"
    ON = "on", "Required"
    OFF = "off", "Not required"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    SUPPORT_AGENT = "support_agent", "Support agent"
    VIEWER = "viewer", "Viewer"
    CUSTOMER = "customer", "Customer"


# Higher ranks may do what lower ones do; used to stop a user granting more than they hold.
ROLE_RANK = {
    Role.OWNER: 60,
    Role.ADMIN: 50,
    Role.OPERATOR: 40,
    Role.SUPPORT_AGENT: 30,
    Role.VIEWER: 20,
    Role.CUSTOMER: 10,
}
KIND_ORDER = {OrgKind.PLATFORM: 0, OrgKind.TENANT: 1, OrgKind.PARTNER: 2, OrgKind.CUSTOMER: 3}

STAFF_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.VIEWER})
MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DISPATCHED = "dispatched", "Dispatched"
    FAILED = "failed", "Failed"
