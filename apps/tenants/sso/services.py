"""Sign-in through the platform's OpenID Connect provider, and the password rule that goes with it.

`sso_sign_in` is the one place that turns a provider's verified claims into a portal user with
memberships: every organization's `SsoRoleMapping` rows are matched against the claims, the
person's memberships in organizations that have mappings are made to agree (created, role
changed, reactivated, or deactivated when no rule matches any more), and memberships elsewhere
are left alone. A person matched by no rule is refused before anything is written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.core.choices import ROLE_RANK, Role
from apps.core.mfa import organization_requires_mfa
from apps.core.tenancy import acting, memberships_of

from ..choices import OrgStatus
from ..models import Membership
from .models import SsoIdentity, SsoPolicy, SsoProvider, SsoRoleMapping

log = logging.getLogger("apps.tenants.sso")
User = get_user_model()

NO_MAPPING = (
    "Your single sign-on account is not given access to the portal: none of your groups is mapped to an "
    "organization. Ask your administrator to put you in a group that is mapped to an organization."
)
INACTIVE = "This portal account is deactivated; ask a platform administrator."
PASSWORD_OFF = "Password sign-in is switched off for your organization: use the single sign-on button instead."
CLOSED_ORGS = (OrgStatus.SUSPENDED, OrgStatus.DELETED)


class SsoRefused(Exception):
    """A sign-in the portal refuses; the message is shown to the person on the login page."""


@dataclass
class SsoResult:
    user: object
    mfa_satisfied: bool
    created: bool


def _mappings(provider: SsoProvider | None):
    """The mappings a sign-in may use: all of them through the platform provider, only its own
    organization's through an organization's provider."""
    rows = SsoRoleMapping.objects.select_related("organization").exclude(organization__status__in=CLOSED_ORGS)
    return rows.filter(organization_id=provider.organization_id) if provider is not None else rows


def _wanted_roles(claims: dict, provider: SsoProvider | None) -> dict[int, tuple]:
    """Organization id → (organization, role) for every mapping the claims match (highest role wins)."""
    wanted: dict[int, tuple] = {}
    mappings = _mappings(provider)
    for mapping in mappings:
        if not mapping.matches(claims):
            continue
        held = wanted.get(mapping.organization_id)
        if held is None or ROLE_RANK[mapping.role] > ROLE_RANK[held[1]]:
            wanted[mapping.organization_id] = (mapping.organization, mapping.role)
    return wanted


def _username_for(claims: dict) -> str:
    raw = str(claims.get("preferred_username") or claims.get("email") or f"sso-{claims['sub']}")
    base = re.sub(r"[^\w.@+-]", "", raw)[:140] or "sso-user"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _account_for(claims: dict, issuer: str, *, link_by_email: bool) -> tuple[object, SsoIdentity, bool]:
    """The user linked to (issuer, sub); else (platform provider only) an existing account with the
    same verified e-mail (never a superuser, never one already linked to another subject of this
    issuer); else a new one. An organization's own provider never links by e-mail: it could name
    anyone's address and take over an account that belongs to other organizations."""
    identity = SsoIdentity.objects.select_for_update().select_related("user").filter(issuer=issuer, subject=claims["sub"]).first()
    if identity is not None:
        return identity.user, identity, False
    email = str(claims.get("email") or "").strip().lower()
    user, created = None, False
    if link_by_email and email and claims.get("email_verified") is True:
        same = list(User.objects.filter(email__iexact=email, is_superuser=False).exclude(sso_identities__issuer=issuer)[:2])
        user = same[0] if len(same) == 1 else None
    if user is None:
        user = User(username=_username_for(claims), email=email)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        created = True
    identity = SsoIdentity.objects.create(user=user, issuer=issuer, subject=claims["sub"])
    return user, identity, created


def _sync_memberships(user, wanted: dict[int, tuple], provider: SsoProvider | None) -> None:
    from ..services import _add_member

    managed = set(_mappings(provider).values_list("organization_id", flat=True).distinct())
    held = {m.organization_id: m for m in Membership.objects.select_for_update().filter(user=user)}
    for org_id, (org, role) in wanted.items():
        membership = held.get(org_id)
        if membership is None:
            _add_member(actor=None, user=user, organization=org, role=role)
        elif membership.role != role or not membership.is_active:
            membership.role, membership.is_active = role, True
            membership.full_clean()
            membership.save()
    for org_id, membership in held.items():
        if org_id in managed and org_id not in wanted and membership.is_active:
            membership.is_active = False  # the provider no longer puts this person in a mapped group
            membership.save(update_fields=["is_active", "updated_at"])


def _apply_profile(user, claims: dict, wanted: dict[int, tuple]) -> None:
    changed = []
    for field, claim in (("first_name", "given_name"), ("last_name", "family_name")):
        value = str(claims.get(claim) or "")[:150]
        if value and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    staff = any(role != Role.CUSTOMER for _, role in wanted.values())
    if staff and not user.is_staff:
        user.is_staff = True
        changed.append("is_staff")
    if changed:
        user.save(update_fields=changed)


def mfa_satisfied_by(user, claims: dict) -> bool:
    """Whether the provider's `amr`/`acr` satisfy the two-factor rule of every organization of
    this person that requires one (each organization says which values it trusts, `SsoPolicy`)."""
    required = [m.organization for m in memberships_of(user) if organization_requires_mfa(m.organization)]
    if not required:
        return False  # nothing to satisfy: the session needs no marker
    policies = {p.organization_id: p for p in SsoPolicy.objects.filter(organization__in=required)}
    return all(org.pk in policies and policies[org.pk].accepts_as_mfa(claims) for org in required)


def sso_sign_in(*, claims: dict, issuer: str, provider: SsoProvider | None = None) -> SsoResult:
    """Turn verified provider claims into a signed-in portal user with memberships matching the
    organizations' mappings (only `provider`'s organization's, for an organization's own provider).
    Raises `SsoRefused` (logged, nothing written) when no mapping matches or the account is
    deactivated."""
    subject = str(claims.get("sub") or "")
    if not subject or not issuer:
        raise SsoRefused("The identity provider sent no subject; the sign-in was not accepted.")
    wanted = _wanted_roles(claims, provider)
    described = {
        "provider": provider.slug if provider else "platform",
        "iss": issuer,
        "sub": subject,
        "email": claims.get("email"),
        "groups": claims.get("groups"),
    }
    if not wanted:
        log.warning("sso sign-in refused: no mapping matches %s", described)
        raise SsoRefused(NO_MAPPING)
    with transaction.atomic():
        user, identity, created = _account_for({**claims, "sub": subject}, issuer, link_by_email=provider is None)
        if not user.is_active:  # raising inside the block rolls back the identity row too
            log.warning("sso sign-in refused: account %s is deactivated (%s)", user.username, described)
            raise SsoRefused(INACTIVE)
        _sync_memberships(user, wanted, provider)
        _apply_profile(user, claims, wanted)
        identity.last_login_at = timezone.now()
        identity.save(update_fields=["last_login_at", "updated_at"])
    log.info("sso sign-in of %s: %s", user.username, {org.slug: role for org, role in wanted.values()})
    return SsoResult(user=user, mfa_satisfied=mfa_satisfied_by(user, claims), created=created)


def password_login_disabled(user) -> bool:
    """Whether any organization this person is an active member of has switched local password
    sign-in off (`SsoPolicy.password_login`)."""
    return Membership.objects.filter(user=user, is_active=True, organization__sso_policy__password_login=False).exists()


def may_manage_sso(actor) -> bool:
    """SSO settings grant roles to whoever a provider names: only platform owners and admins (and
    the system) write them; an organization's managers may read their own."""
    if actor is None:
        return True
    ctx = acting(actor)
    return ctx.superuser or (ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN])


def _check_may_manage(actor) -> None:
    if not may_manage_sso(actor):
        raise PermissionDenied("Only platform owners and admins change single sign-on settings.")


def sso_setting_save(obj, *, actor):
    """Create or change an SSO role mapping or policy (validated, audited as a configuration change)."""
    from apps.core.services import scoped_save

    _check_may_manage(actor)
    return scoped_save(obj, actor=actor)


def sso_setting_delete(obj, *, actor) -> None:
    from apps.core.services import scoped_delete

    _check_may_manage(actor)
    scoped_delete(obj, actor=actor)


def sso_provider_save(provider: SsoProvider, *, actor, secret: str | None = None) -> SsoProvider:
    """Create or change an organization's provider; `secret` (when given) is stored encrypted."""
    _check_may_manage(actor)
    if secret is not None:
        provider.set_secret(secret)
    return sso_setting_save(provider, actor=actor)
