"""Single sign-on (OpenID Connect) settings of an organization: how the provider's claims map to
memberships and roles, whether local passwords still work, which `amr`/`acr` values count as
two-factor sign-in, and optionally the organization's own provider. The platform provider is
configured from the environment (`OIDC_*`, docs/sso.md); an organization's own provider
(`SsoProvider`) is a row here, its client secret encrypted (apps/core/crypto.py)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.choices import MANAGER_ROLES, OrgKind, Role
from apps.core.crypto import EncryptedTextField, decrypt, encrypt
from apps.core.models import PortalManager, TimeStampedModel
from apps.core.tenancy import Acting


def _split(text: str) -> set[str]:
    return {part.strip() for part in (text or "").replace(" ", ",").split(",") if part.strip()}


class SsoScopedMixin:
    """Platform staff manage every organization's SSO rows; an organization's own managers may
    read theirs (so they can see why a colleague was refused), never write them: a mapping grants
    roles to whoever the provider names."""

    PORTAL_ROLE_ACTIONS = {"view": MANAGER_ROLES, "add": MANAGER_ROLES, "change": MANAGER_ROLES, "delete": MANAGER_ROLES}

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        if ctx.is_platform:
            return queryset
        if action == "view" and ctx.kind != OrgKind.CUSTOMER:
            return queryset.filter(organization_id=ctx.organization_id)
        return queryset.none()


class SsoPolicy(SsoScopedMixin, TimeStampedModel):
    """An organization's sign-in rules for SSO: local password sign-in on or off (admin and JWT),
    and the `amr` / `acr` values of the provider's ID token that satisfy its two-factor rule."""

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="sso_policy")
    password_login = models.BooleanField(
        "local password sign-in",
        default=True,
        help_text="Off: members of this organization sign in only through SSO (the admin's password form and "
        "POST /api/v1/auth/token refuse their password).",
    )
    mfa_amr_values = models.CharField(
        "amr values that count as two-factor",
        max_length=200,
        blank=True,
        help_text="Comma-separated; an ID token whose `amr` holds any of them satisfies this organization's two-factor "
        "rule (e.g. mfa, otp, hwk). Empty: the provider's amr is not trusted.",
    )
    mfa_acr_values = models.CharField(
        "acr values that count as two-factor",
        max_length=200,
        blank=True,
        help_text="Comma-separated; an ID token whose `acr` is one of them satisfies the two-factor rule.",
    )

    objects = PortalManager()

    class Meta:
        verbose_name = "SSO policy"
        verbose_name_plural = "SSO policies"
        ordering = ["organization__name"]

    def __str__(self) -> str:
        return f"SSO policy of {self.organization.name}"

    def accepts_as_mfa(self, claims: dict) -> bool:
        """Whether the ID token's `amr`/`acr` satisfy this organization's two-factor rule."""
        amr = claims.get("amr") or []
        amr = {amr} if isinstance(amr, str) else {str(v) for v in amr if isinstance(v, (str, int))}
        if amr & _split(self.mfa_amr_values):
            return True
        acr = claims.get("acr")
        return isinstance(acr, str) and acr in _split(self.mfa_acr_values)


class SsoRoleMapping(SsoScopedMixin, TimeStampedModel):
    """One rule: a person whose claim `claim` equals `value` (or, for a list claim such as
    `groups`, contains it) holds `role` in `organization`. Applied on every SSO sign-in; a person
    matched by no rule is refused."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="sso_mappings")
    claim = models.CharField(
        max_length=100, default="groups", help_text="Claim name in the ID token or userinfo (e.g. groups, email_domain, hd)."
    )
    value = models.CharField(max_length=200, help_text="The value that must be present (exact match).")
    role = models.CharField(max_length=16, choices=Role.choices)

    objects = PortalManager()

    class Meta:
        verbose_name = "SSO role mapping"
        ordering = ["organization__name", "claim", "value"]
        constraints = [models.UniqueConstraint(fields=["organization", "claim", "value"], name="tenants_sso_mapping_unique")]

    def __str__(self) -> str:
        return f"{self.claim}={self.value} → {self.get_role_display()} of {self.organization.name}"

    def clean(self) -> None:
        if self.organization_id:  # the same role rules as the membership it becomes
            from apps.tenants.models import Membership

            Membership(organization=self.organization, role=self.role).clean()
        if self.claim in {"amr", "acr", "sub", "iss", "aud", "nonce"}:
            raise ValidationError(
                {"claim": f"{self.claim} describes the sign-in itself, not the person; map a group or attribute claim."}
            )

    def matches(self, claims: dict) -> bool:
        found = claims.get(self.claim)
        if isinstance(found, (list, tuple)):
            return self.value in {str(v) for v in found}
        return found is not None and str(found) == self.value


class SsoIdentity(TimeStampedModel):
    """The link between a provider's subject (`iss`, `sub`) and a portal user, so a changed
    e-mail address at the provider never moves a sign-in to another account."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    last_login_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()  # a platform resource (no tenant scope): platform staff only

    class Meta:
        verbose_name = "SSO identity"
        verbose_name_plural = "SSO identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="tenants_sso_identity_unique")]

    def __str__(self) -> str:
        return f"{self.user} ← {self.issuer} {self.subject}"


class SsoProvider(SsoScopedMixin, TimeStampedModel):
    """An organization's own OpenID Connect provider, beside the platform's: its button appears on
    the login page, and a sign-in through it is mapped by this organization's mappings only (it can
    never grant a role anywhere else). The client secret is stored encrypted."""

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="sso_provider")
    name = models.CharField(max_length=80, help_text="Shown on the login button: “Sign in with <name>”.")
    slug = models.SlugField(max_length=60, unique=True, help_text="In the sign-in URL: /admin/sso/<slug>/login/.")
    issuer = models.URLField(max_length=500, help_text="Must equal the `iss` of the provider's ID tokens.")
    authorization_endpoint = models.URLField(max_length=500)
    token_endpoint = models.URLField(max_length=500)
    userinfo_endpoint = models.URLField(max_length=500)
    jwks_endpoint = models.URLField("JWKS endpoint", max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret = EncryptedTextField(blank=True, editable=False)
    scopes = models.CharField(max_length=200, default="openid email profile")
    is_active = models.BooleanField(default=True)

    objects = PortalManager()

    class Meta:
        verbose_name = "SSO provider"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (SSO of {self.organization.name})"

    def set_secret(self, plaintext: str) -> None:
        self.client_secret = encrypt(plaintext) if plaintext else ""

    def get_secret(self) -> str:
        return decrypt(self.client_secret) if self.client_secret else ""

    def clean(self) -> None:
        if "openid" not in self.scopes.split():
            raise ValidationError({"scopes": "The scopes must include openid."})
