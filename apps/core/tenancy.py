"""Who is acting, within which organization: the input to every visibility decision.

A user may hold memberships in several organizations; each request acts within one of them.
The web picks it from the session (admin switcher) or the `X-Organization` header (API); with no
choice the default is the membership that reaches furthest (platform, then tenant, partner,
customer; higher role first). Memberships live in `apps.tenants`, one layer up, so they are
looked up by app label here rather than imported (the same as a string foreign key).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import PermissionDenied

from .choices import KIND_ORDER, ROLE_RANK, OrgKind, Role

_CACHE_ATTR = "_portal_acting"
_CHOICE_ATTR = "_portal_org_choice"


@dataclass(frozen=True)
class Acting:
    """The acting user's reach for one request (or one task)."""

    user_id: int | None
    superuser: bool = False
    membership_id: int | None = None
    organization_id: int | None = None
    organization_slug: str | None = None
    kind: str | None = None
    role: str | None = None
    # The tenant whose rows the user works on (their own tenant, or the customer's tenant).
    tenant_id: int | None = None
    # Tenants a partner serves.
    served_tenant_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_platform(self) -> bool:
        return self.superuser or self.kind == OrgKind.PLATFORM

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def rank(self) -> int:
        if self.superuser:
            return 100
        return ROLE_RANK.get(self.role, 0)

    def can_write_tenant(self, tenant_id: int | None) -> bool:
        """Whether rows of this tenant may be created or changed by this user at all."""
        if self.is_platform:
            return True
        if self.kind == OrgKind.TENANT:
            return tenant_id is not None and tenant_id == self.tenant_id
        return False


NOBODY = Acting(user_id=None)


def _membership_model():
    return apps.get_model("tenants", "Membership")


def memberships_of(user):
    """Active memberships of a user, best reach first."""
    if not getattr(user, "is_authenticated", False):
        return []
    rows = list(
        _membership_model()
        .objects.filter(user_id=user.pk, is_active=True)
        .select_related("organization")
        .exclude(organization__status__in=["suspended", "deleted"])
    )
    rows.sort(key=lambda m: (KIND_ORDER.get(m.organization.kind, 9), -ROLE_RANK.get(m.role, 0), m.pk))
    return rows


def choose_organization(user, ref: str | int | None) -> None:
    """Record which organization the user acts within (slug or id); validated on next use."""
    setattr(user, _CHOICE_ATTR, str(ref) if ref not in (None, "") else None)
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def acting(user) -> Acting:
    """The acting context of a user, computed once per user object."""
    if user is None or not getattr(user, "is_authenticated", False):
        return NOBODY
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    ctx = _compute(user)
    setattr(user, _CACHE_ATTR, ctx)
    return ctx


def remember_acting(user, ctx: Acting) -> None:
    """Give a user object the acting context computed earlier for the same user row and the same
    organization choice (a process that caches contexts, e.g. the tickets' lean create route)."""
    setattr(user, _CACHE_ATTR, ctx)


def _compute(user) -> Acting:
    memberships = memberships_of(user)
    choice = getattr(user, _CHOICE_ATTR, None)
    chosen = None
    if choice:
        for m in memberships:
            if choice in (m.organization.slug, str(m.organization_id)):
                chosen = m
                break
        if chosen is None and not user.is_superuser:
            raise PermissionDenied(
                f"You are not a member of organization {choice!r}. "
                f"Choose one of: {', '.join(m.organization.slug for m in memberships) or 'none'}."
            )
    elif memberships:
        chosen = memberships[0]
    if chosen is None:
        return Acting(user_id=user.pk, superuser=user.is_superuser)
    org = chosen.organization
    tenant_id = None
    served: frozenset[int] = frozenset()
    if org.kind == OrgKind.TENANT:
        tenant_id = org.pk
    elif org.kind == OrgKind.CUSTOMER:
        tenant_id = org.parent_id
    elif org.kind == OrgKind.PARTNER:
        served = frozenset(org.served_tenants.values_list("pk", flat=True))
    role = chosen.role
    if org.kind == OrgKind.CUSTOMER:
        role = Role.CUSTOMER  # a customer organization grants nothing beyond the customer role
    return Acting(
        user_id=user.pk,
        superuser=user.is_superuser,
        membership_id=chosen.pk,
        organization_id=org.pk,
        organization_slug=org.slug,
        kind=org.kind,
        role=role,
        tenant_id=tenant_id,
        served_tenant_ids=served,
    )


# Processes that keep who-acts-within-what (users, memberships, organizations) between requests
# (the tickets' lean create route: apps/tickets/principals.py) trust what they keep only while this
# version token is unchanged. Saves and deletes bump it through signals; code that changes those
# rows with a queryset update() (no signal) calls `tenancy_changed()` itself.
TENANCY_VERSION_KEY = "core:tenancy:version"
TENANCY_VERSION_TTL = 60


def tenancy_changed() -> None:
    """Users, memberships or organizations changed: kept acting contexts are stale (now and after commit)."""
    from .cache import bump_version_token

    bump_version_token(TENANCY_VERSION_KEY, TENANCY_VERSION_TTL)

