"""Organizations (platform, tenants, partners, customers) and memberships with roles."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.choices import MANAGER_ROLES, OrgKind, Role, StaffMfa
from apps.core.models import PortalManager, PortalQuerySet, TimeStampedModel
from apps.core.tenancy import Acting

from .choices import InvitationStatus, OrgStatus


class OrganizationQuerySet(PortalQuerySet):
    def tenants(self):
        return self.filter(kind=OrgKind.TENANT)

    def partners(self):
        return self.filter(kind=OrgKind.PARTNER)


class Organization(TimeStampedModel):
    """An organization: the one platform (the portal operator), a tenant, a partner that serves
    several tenants, or a customer that belongs to one tenant. Tenant-owned rows everywhere
    point at an organization of kind `tenant`."""

    kind = models.CharField(max_length=10, choices=OrgKind.choices, db_index=True)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    status = models.CharField(max_length=12, choices=OrgStatus.choices, default=OrgStatus.ACTIVE, db_index=True)
    timezone = models.CharField(max_length=64, default="UTC")
    require_staff_mfa = models.CharField(
        "staff two-factor sign-in",
        max_length=8,
        choices=StaffMfa.choices,
        default=StaffMfa.INHERIT,
        help_text="Whether this organization's staff must confirm a TOTP authenticator before the admin opens "
        "(apps/core/mfa.py). Platform staff follow the platform organization; a person in several organizations "
        "must confirm if any of them requires it.",
    )
    # Tenant settings such as SLA defaults and the agent workload threshold; apps read their keys.
    settings = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        limit_choices_to={"kind": OrgKind.TENANT},
        help_text="For a customer: the tenant it belongs to.",
    )
    served_tenants = models.ManyToManyField(
        "self",
        blank=True,
        symmetrical=False,
        related_name="partners",
        limit_choices_to={"kind": OrgKind.TENANT},
        help_text="For a partner: the tenants it serves.",
    )
    history = HistoricalRecords(m2m_fields=[served_tenants])

    objects = models.Manager.from_queryset(OrganizationQuerySet)()

    PORTAL_ROLE_ACTIONS = {
        "view": {Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.VIEWER, Role.CUSTOMER},
        "add": MANAGER_ROLES,
        "change": MANAGER_ROLES,
        "delete": {Role.OWNER},
    }

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind=OrgKind.PLATFORM), name="tenants_one_platform"
            ),
            models.CheckConstraint(
                condition=Q(kind=OrgKind.CUSTOMER, parent__isnull=False) | ~Q(kind=OrgKind.CUSTOMER),
                name="tenants_customer_has_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display().lower()})"

    def clean(self) -> None:
        if self.kind == OrgKind.CUSTOMER and not self.parent_id:
            raise ValidationError({"parent": "A customer organization must belong to a tenant."})
        if self.kind != OrgKind.CUSTOMER and self.parent_id:
            raise ValidationError({"parent": "Only customer organizations belong to a tenant."})
        if self.parent_id and self.parent_id == self.pk:
            raise ValidationError({"parent": "An organization cannot belong to itself."})
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"timezone": f"Unknown time zone {self.timezone!r}; use an IANA name such as Europe/Berlin."})

    # -- the tenancy gate --------------------------------------------------------------------
    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Platform: all. Tenant staff: their tenant, its customers and partners (view only for
        those). Partner staff: themselves and the tenants they serve (view). Customers: their own
        organization."""
        if ctx.is_platform:
            return queryset
        if action != "view":
            own = Q(pk=ctx.organization_id)
            if ctx.kind == OrgKind.TENANT:
                own |= Q(kind=OrgKind.CUSTOMER, parent_id=ctx.tenant_id)
            return queryset.filter(own) if ctx.kind != OrgKind.CUSTOMER else queryset.none()
        if ctx.kind == OrgKind.TENANT:
            return queryset.filter(
                Q(pk=ctx.tenant_id) | Q(parent_id=ctx.tenant_id) | Q(kind=OrgKind.PARTNER, served_tenants=ctx.tenant_id)
            ).distinct()
        if ctx.kind == OrgKind.PARTNER:
            return queryset.filter(Q(pk=ctx.organization_id) | Q(pk__in=ctx.served_tenant_ids))
        if ctx.kind == OrgKind.CUSTOMER:
            return queryset.filter(pk=ctx.organization_id)
        return queryset.none()


class Tenant(Organization):
    """Admin screen for tenants (organizations of kind tenant)."""

    class Meta:
        proxy = True


class Partner(Organization):
    """Admin screen for partners."""

    class Meta:
        proxy = True


class CustomerOrganization(Organization):
    """Admin screen for customer organizations (lifecycle arrives with the customers app)."""

    class Meta:
        proxy = True
        verbose_name = "customer organization"


def managed_organizations(ctx: Acting) -> Q:
    """Rows with an `organization` whose members a manager manages: their own organization and,
    for tenant managers, their tenant's customer organizations."""
    reach = Q(organization_id=ctx.organization_id)
    if ctx.kind == OrgKind.TENANT:
        reach |= Q(organization__kind=OrgKind.CUSTOMER, organization__parent_id=ctx.tenant_id)
    return reach


class Membership(TimeStampedModel):
    """A user's role in one organization. A user may hold several; requests act within one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    objects = PortalManager()

    PORTAL_ROLE_ACTIONS = {
        "view": {Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.VIEWER, Role.CUSTOMER},
        "add": MANAGER_ROLES,
        "change": MANAGER_ROLES,
        "delete": MANAGER_ROLES,
    }

    class Meta:
        ordering = ["organization__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="tenants_membership_unique")]
        indexes = [models.Index(fields=["user", "is_active"], name="tenants_membership_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.organization.name}"

    def clean(self) -> None:
        org = self.organization if self.organization_id else None
        if org is None:
            return
        if org.kind == OrgKind.CUSTOMER and self.role != Role.CUSTOMER:
            raise ValidationError({"role": "Members of a customer organization have the customer role."})
        if org.kind != OrgKind.CUSTOMER and self.role == Role.CUSTOMER:
            raise ValidationError({"role": "The customer role exists only in customer organizations."})

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Managers see and manage the memberships of their organization (tenant managers also
        their customers'); everyone else sees the members of their own organization."""
        if ctx.is_platform:
            return queryset
        if ctx.role in MANAGER_ROLES:
            return queryset.filter(managed_organizations(ctx))
        if action == "view":
            if ctx.kind == OrgKind.CUSTOMER:
                return queryset.filter(user_id=ctx.user_id)
            return queryset.filter(organization_id=ctx.organization_id)
        return queryset.none()


class Invitation(TimeStampedModel):
    """An e-mailed offer of a role in one organization. Only a hash of its token is stored; the
    invited person accepts with the token (signed in: their account joins; otherwise a new
    account is created), so nobody becomes a member without consent. `tenant` is the tenant the
    organization belongs to (itself, or a customer organization's tenant; empty for partners
    and the platform)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    tenant = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+", limit_choices_to={"kind": OrgKind.TENANT}
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING, db_index=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    # Pending addresses are personal data of people who are not members yet: managers only.
    PORTAL_ROLE_ACTIONS = {"view": MANAGER_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"], condition=Q(status="pending"), name="tenants_invitation_one_pending"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="tenants_invitation_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.email} — {self.get_role_display()} of {self.organization.name}"

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.status == InvitationStatus.PENDING and self.expires_at <= timezone.now()

    @property
    def current_status(self) -> str:
        """The status as of now: a pending invitation past its expiry reads `expired`."""
        return InvitationStatus.EXPIRED if self.is_expired else self.status

    def clean(self) -> None:
        if self.organization_id:  # the same role rules as the membership it becomes
            Membership(organization=self.organization, role=self.role).clean()

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """The organizations whose members a manager manages (as for memberships)."""
        if ctx.is_platform:
            return queryset
        if ctx.role not in MANAGER_ROLES:
            return queryset.none()
        return queryset.filter(managed_organizations(ctx))


# Customers of a tenant (lifecycle, services, export, deletion): apps/tenants/customers/.
from .customers.models import (  # noqa: E402, F401
    Customer,
    CustomerService,
    DataExport,
    DeletionRequest,
    LifecycleEvent,
    VerificationCode,
)

# Single sign-on (OpenID Connect) mappings, policies and identities: apps/tenants/sso/.
from .sso.models import SsoIdentity, SsoPolicy, SsoProvider, SsoRoleMapping  # noqa: E402, F401

# API tokens and service accounts: apps/tenants/tokens/.
from .tokens.models import ApiToken, ServiceAccount  # noqa: E402, F401
