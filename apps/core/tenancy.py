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

from .cache import ProcessMemo
from .choices import KIND_ORDER, ROLE_RANK, OrgKind, Role

_CACHE_ATTR = "_portal_acting"
_CHOICE_ATTR = "_portal_org_choice"
_KEPT_ATTR = "_portal_kept_contexts"  # organization choice -> Acting or refusal, kept per process
_PINNED_ATTR = "_portal_pinned"  # an Acting no organization choice changes (an API token's)


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


_MEMBERSHIPS = object()  # the key of a kept user's membership list among its kept contexts


def memberships_of(user):
    """Active memberships of a user, best reach first (kept with a kept user: read-only)."""
    if not getattr(user, "is_authenticated", False):
        return []
    pinned = getattr(user, _PINNED_ATTR, None)
    if pinned is not None:  # an API token: its own organization's membership only
        return [m for m in _memberships_kept(user) if m.pk == pinned.membership_id]
    return _memberships_kept(user)


def _memberships_kept(user):
    kept = getattr(user, _KEPT_ATTR, None)
    if kept is not None:
        rows = kept.get(_MEMBERSHIPS)
        if rows is None:
            rows = kept[_MEMBERSHIPS] = _memberships(user)
        return list(rows)
    return _memberships(user)


def _memberships(user):
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
    pinned = getattr(user, _PINNED_ATTR, None)
    if pinned is not None:
        choice = getattr(user, _CHOICE_ATTR, None)
        if choice and choice not in (pinned.organization_slug, str(pinned.organization_id)):
            raise PermissionDenied(f"This API token acts within organization {pinned.organization_slug!r} only; "
                                   f"it cannot act within {choice!r}.")
        return pinned
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    kept = getattr(user, _KEPT_ATTR, None)
    if kept is None:
        ctx = _compute(user)
    else:
        choice = getattr(user, _CHOICE_ATTR, None)
        ctx = kept.get(choice)
        if ctx is None:
            try:
                ctx = _compute(user)
            except PermissionDenied as exc:
                ctx = str(exc)
            kept[choice] = ctx
        if isinstance(ctx, str):
            raise PermissionDenied(ctx)
    setattr(user, _CACHE_ATTR, ctx)
    return ctx


def pin_acting(user, ctx: Acting) -> None:
    """Fix the user object's acting context (an API token's organization and capped role): any
    other organization choice is refused, and only that membership is listed."""
    setattr(user, _PINNED_ATTR, ctx)


def kept_user(user_id):
    """A copy of the user row with this id, kept per process with the acting contexts computed
    for it (None: no such user); callers may set attributes on the copy. Trusted while the
    tenancy version token is unchanged, at most TENANCY_VERSION_TTL seconds."""
    import copy

    entry = principals.get(str(user_id), lambda: _load_principal(user_id))  # the claim may be a string
    if entry is None:
        return None
    user = copy.copy(entry[0])
    setattr(user, _KEPT_ATTR, entry[1])
    return user


def _load_principal(user_id):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first()
    return (user, {}) if user is not None else None


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


# Who acts within what (users, memberships, organizations) is kept per process between requests
# (`kept_user`, used by the API's JWT authentication) while this memo's version token is unchanged.
# Saves and deletes bump it through signals (`connect_invalidation`); code that changes those rows
# with a queryset update() (no signal) calls `tenancy_changed()` itself.
TENANCY_VERSION_TTL = 60
principals = ProcessMemo("tenancy", ttl=TENANCY_VERSION_TTL, max_entries=5000)


def tenancy_changed(*args, **kwargs) -> None:
    """Users, memberships or organizations changed: kept acting contexts are stale (now and after
    commit). Also the signal receiver (a login's `last_login` update changes nothing kept)."""
    if kwargs.get("update_fields") and set(kwargs["update_fields"]) <= {"last_login"}:
        return
    principals.bump()


def connect_invalidation() -> None:
    """Users, memberships, organizations (status, parent, served tenants) and customers (whose
    status change suspends the organization with a queryset update)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_delete, post_save

    for model in (get_user_model(), _membership_model(), apps.get_model("tenants", "Organization"), apps.get_model("tenants", "Customer")):
        post_save.connect(tenancy_changed, sender=model, dispatch_uid=f"core-tenancy-save-{model._meta.label}")
        post_delete.connect(tenancy_changed, sender=model, dispatch_uid=f"core-tenancy-delete-{model._meta.label}")
    served = apps.get_model("tenants", "Organization").served_tenants.through
    m2m_changed.connect(tenancy_changed, sender=served, dispatch_uid="core-tenancy-served")
