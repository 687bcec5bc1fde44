"""API tokens and service accounts (issue 19.1).

A `ServiceAccount` is a non-human member of one organization: a user row that cannot sign in
(no usable password, not staff) with one membership that carries its role. An `ApiToken`
authenticates API requests as a person or a service account within one organization, with a
role no higher than its principal's; only a SHA-256 hash of the secret is stored, with its
first characters (`prefix`) to tell tokens apart. docs/api-tokens.md.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, OrgKind, Role
from apps.core.models import PortalManager, TimeStampedModel
from apps.core.tenancy import Acting

EVERYONE = {*STAFF_ROLES, Role.CUSTOMER}


def _managed(ctx: Acting) -> Q:
    """The organizations whose members a manager manages (own; a tenant's customers too)."""
    reach = Q(organization_id=ctx.organization_id)
    if ctx.kind == OrgKind.TENANT:
        reach |= Q(organization__kind=OrgKind.CUSTOMER, organization__parent_id=ctx.tenant_id)
    return reach


class ServiceAccount(TimeStampedModel):
    """A non-human member of one organization (an integration, a CI pipeline). Its `user` has no
    usable password and holds exactly one membership, in `organization`, with the account's role;
    it acts only through API tokens. Deactivating it deactivates the membership, which stops
    its tokens at once."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="service_accounts")
    tenant = models.ForeignKey(
        "tenants.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
        help_text="The tenant the organization belongs to (itself, or a customer organization's tenant).",
    )
    name = models.CharField(max_length=80, help_text="What it is for, e.g. 'grafana' or 'ci-deploy'.")
    description = models.CharField(max_length=300, blank=True, default="")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account", editable=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    objects = PortalManager()

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="tenants_serviceaccount_unique_name")]
        indexes = [models.Index(fields=["tenant", "is_active"], name="tenants_sa_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.name} (service account of {self.organization.name})" if self.organization_id else self.name

    def clean(self) -> None:
        org = self.organization if self.organization_id else None
        if org is not None:
            if org.kind == OrgKind.CUSTOMER and self.role != Role.CUSTOMER:
                raise ValidationError({"role": "Service accounts of a customer organization have the customer role."})
            if org.kind != OrgKind.CUSTOMER and self.role == Role.CUSTOMER:
                raise ValidationError({"role": "The customer role exists only in customer organizations."})

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Platform: all. Managers: the service accounts of the organizations they manage. Other
        staff: see their own organization's (to know which integrations act there)."""
        if ctx.is_platform and (action == "view" or ctx.superuser or ctx.role in MANAGER_ROLES):
            return queryset
        if ctx.role in MANAGER_ROLES:
            return queryset.filter(_managed(ctx))
        if action == "view" and ctx.role in STAFF_ROLES:
            return queryset.filter(organization_id=ctx.organization_id)
        return queryset.none()


class ApiToken(TimeStampedModel):
    """A secret that authenticates API requests as `user` (a person, or a service account's user)
    within `organization`, acting with `role` capped by the user's current role there. Shown
    once at creation; `token_hash` is the SHA-256 of the secret, `prefix` its first characters.
    `last_used_at`/`last_used_ip` are written at most once a minute (docs/api-tokens.md)."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="api_tokens")
    tenant = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+", editable=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", editable=False)
    service_account = models.ForeignKey(
        ServiceAccount,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tokens",
        help_text="Empty: a personal token of the person creating it.",
    )
    name = models.CharField(max_length=80, help_text="What the token is for, e.g. 'grafana alerts'.")
    role = models.CharField(max_length=16, choices=Role.choices)
    prefix = models.CharField(max_length=16, editable=False, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: no expiry.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    objects = PortalManager()

    # Anyone may hold personal tokens; which rows they reach is `scope_queryset`'s answer.
    PORTAL_ROLE_ACTIONS = {"view": EVERYONE, "add": EVERYONE, "change": EVERYONE, "revoke": EVERYONE, "delete": set()}

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "user"], name="tenants_apitoken_org_user_idx"),
            models.Index(fields=["tenant", "created_at"], name="tenants_apitoken_tenant_idx"),
        ]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def kind(self) -> str:
        return "service_account" if self.service_account_id else "personal"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """Platform: all. Managers: every token of the organizations they manage (to audit and
        revoke). Everyone else: their own personal tokens in the acting organization."""
        if ctx.is_platform and (action == "view" or ctx.superuser or ctx.role in MANAGER_ROLES):
            return queryset
        if ctx.role in MANAGER_ROLES:
            return queryset.filter(_managed(ctx))
        if ctx.organization_id is None:
            return queryset.none()
        return queryset.filter(user_id=ctx.user_id, organization_id=ctx.organization_id)
