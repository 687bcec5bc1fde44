"""Every write to organizations and memberships, and the rules that go with it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify

from apps.core.choices import MANAGER_ROLES, ROLE_RANK, OrgKind, Role, StaffMfa
from apps.core.events import publish
from apps.core.tenancy import acting

from .models import Membership, Organization

User = get_user_model()


def _unique_slug(name: str, slug: str | None) -> str:
    base = slugify(slug or name)[:50] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _check_may_create_org(actor, kind: str, parent: Organization | None) -> None:
    if actor is None:
        return
    ctx = acting(actor)
    if ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN]:
        return
    if kind == OrgKind.CUSTOMER and ctx.kind == OrgKind.TENANT and ctx.role in MANAGER_ROLES:
        if parent is not None and parent.pk == ctx.tenant_id:
            return
        raise PermissionDenied("You can only add customers to your own tenant.")
    raise PermissionDenied(
        "Only platform owners and admins create tenants and partners; tenant owners and admins create customers."
    )


def organization_create(
    *,
    actor,
    kind: str,
    name: str,
    slug: str | None = None,
    status: str | None = None,
    timezone: str = "UTC",
    settings: dict | None = None,
    parent: Organization | None = None,
    served_tenants=(),
    require_staff_mfa: str = StaffMfa.INHERIT,
) -> Organization:
    """Create an organization of any kind; see `_check_may_create_org` for who may (a staff
    two-factor rule other than the default: platform staff only)."""
    ctx = acting(actor) if actor else None
    if kind == OrgKind.CUSTOMER and parent is None and ctx and ctx.kind == OrgKind.TENANT:
        parent = Organization.objects.get(pk=ctx.tenant_id)
    _check_may_create_org(actor, kind, parent)
    if require_staff_mfa != StaffMfa.INHERIT and ctx is not None and not ctx.is_platform:
        raise PermissionDenied("Only platform staff decide whether an organization's staff need two-factor sign-in.")
    if kind == OrgKind.PLATFORM and Organization.objects.filter(kind=OrgKind.PLATFORM).exists():
        raise ValidationError({"kind": "There is already a platform organization; there can be only one."})
    with transaction.atomic():
        org = Organization(
            kind=kind,
            name=name,
            slug=slug if slug else _unique_slug(name, slug),
            status=status or "active",
            timezone=timezone,
            settings=settings or {},
            parent=parent,
            require_staff_mfa=require_staff_mfa,
        )
        org.full_clean()
        org.save()
        if served_tenants:
            _set_served(org, served_tenants)
        publish("organization.created", tenant=org if kind == OrgKind.TENANT else None, payload={"id": org.pk, "kind": kind}, actor=actor)
    return org


def _set_served(org: Organization, tenants) -> None:
    if org.kind != OrgKind.PARTNER:
        raise ValidationError({"served_tenants": "Only partners serve tenants."})
    tenants = list(tenants)
    wrong = [t.slug for t in tenants if t.kind != OrgKind.TENANT]
    if wrong:
        raise ValidationError({"served_tenants": f"Not tenants: {', '.join(wrong)}."})
    org.served_tenants.set(tenants)


def organization_update(org: Organization, *, actor, **changes) -> Organization:
    """Change an organization's name, status, time zone, settings, staff two-factor rule or served
    tenants (status and the two-factor rule: platform staff only)."""
    served = changes.pop("served_tenants", None)
    for immutable in ("kind", "parent"):
        if immutable in changes and changes[immutable] != getattr(org, immutable):
            raise ValidationError({immutable: f"The {immutable} of an organization cannot change."})
        changes.pop(immutable, None)
    if actor is not None and not Organization.objects.visible_to(actor, "change").filter(pk=org.pk).exists():
        raise PermissionDenied("You cannot change this organization.")
    if "status" in changes and actor is not None and not acting(actor).is_platform:
        raise PermissionDenied("Only platform staff change an organization's status.")
    if changes.get("require_staff_mfa", org.require_staff_mfa) != org.require_staff_mfa and actor is not None and not acting(actor).is_platform:
        raise PermissionDenied("Only platform staff change whether an organization's staff need two-factor sign-in.")
    with transaction.atomic():
        for key, value in changes.items():
            setattr(org, key, value)
        org.full_clean()
        org.save()
        if served is not None:
            if actor is not None and not acting(actor).is_platform:
                raise PermissionDenied("Only platform staff change which tenants a partner serves.")
            _set_served(org, served)
    return org


def organization_delete(org: Organization, *, actor) -> None:
    """Organizations are never hard-deleted while rows refer to them; mark deleted instead."""
    organization_update(org, actor=actor, status="deleted")


def _check_may_grant(actor, organization: Organization, role: str) -> None:
    if actor is None:
        return
    ctx = acting(actor)
    if ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN]:
        return
    if not Organization.objects.visible_to(actor, "change").filter(pk=organization.pk).exists():
        raise PermissionDenied("You can only manage members of your own organization (and your tenant's customers).")
    if ctx.role not in MANAGER_ROLES:
        raise PermissionDenied("Only owners and admins manage members.")
    if ROLE_RANK.get(role, 0) > ctx.rank:
        raise PermissionDenied(f"You cannot grant the {role} role: it is above your own.")


def membership_create(
    *,
    actor,
    organization: Organization,
    role: str,
    user=None,
    username: str | None = None,
    email: str = "",
    is_active: bool = True,
) -> Membership:
    """Give a user a role in an organization, creating the user (without a usable password;
    they set one through the reset flow) when only a username is given."""
    _check_may_grant(actor, organization, role)
    with transaction.atomic():
        if user is None:
            if not username:
                raise ValidationError({"username": "Name an existing user or a username to create."})
            user, created = User.objects.get_or_create(username=username, defaults={"email": email})
            if created:
                user.set_unusable_password()
                user.is_staff = role != Role.CUSTOMER
                user.save()
        if Membership.objects.filter(user=user, organization=organization).exists():
            raise ValidationError({"user": f"{user.username} is already a member of {organization.name}."})
        membership = Membership(user=user, organization=organization, role=role, is_active=is_active)
        membership.full_clean()
        membership.save()
        if role != Role.CUSTOMER and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        publish(
            "membership.created",
            tenant=organization if organization.kind == OrgKind.TENANT else organization.parent,
            payload={"id": membership.pk, "user_id": user.pk, "organization_id": organization.pk, "role": role},
            actor=actor,
        )
    return membership


def membership_update(membership: Membership, *, actor, role: str | None = None, is_active: bool | None = None, **_ignored) -> Membership:
    """Change a member's role or deactivate the membership."""
    if role is not None:
        _check_may_grant(actor, membership.organization, role)
    _check_may_grant(actor, membership.organization, membership.role)
    if actor is not None and actor.pk == membership.user_id and role is not None and role != membership.role:
        raise PermissionDenied("You cannot change your own role.")
    with transaction.atomic():
        if role is not None:
            membership.role = role
        if is_active is not None:
            membership.is_active = is_active
        membership.full_clean()
        membership.save()
    return membership


def membership_delete(membership: Membership, *, actor) -> None:
    """Remove a membership (the user stays; their other memberships are untouched)."""
    _check_may_grant(actor, membership.organization, membership.role)
    if actor is not None and actor.pk == membership.user_id:
        raise PermissionDenied("You cannot remove your own membership; ask another admin.")
    membership.delete()
