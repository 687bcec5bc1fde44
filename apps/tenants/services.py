"""Every write to organizations and memberships, and the rules that go with it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.core.choices import MANAGER_ROLES, ROLE_RANK, OrgKind, Role, StaffMfa
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.tenancy import acting

from .choices import InvitationStatus as S
from .models import Invitation, Membership, Organization, ServiceAccount

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
    if not policy.may_grant_role(actor, role):
        raise PermissionDenied(f"You cannot grant the {role} role: it is above your own.")


# One answer for an id that is unknown and for one of a person out of reach (issue 17.2).
NOT_ADDABLE = "No person with this id can be added here. To add someone new to your organization, invite them by e-mail."


def _addable_user(actor, user_id):
    """A person an actor may name directly: anyone for platform admins and the system, else only
    people already in an organization whose members the actor manages."""
    people = User.objects.all()
    ctx = acting(actor) if actor is not None else None
    if ctx is not None and not (ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN]):
        people = people.filter(pk__in=Membership.objects.visible_to(actor, "change").values("user_id"))
    try:
        return people.get(pk=int(user_id))
    except (User.DoesNotExist, TypeError, ValueError):
        raise ValidationError({"user": NOT_ADDABLE}) from None


def _new_account(*, username: str, email: str, role: str, password: str | None = None):
    """A new user; a taken username is refused, never linked to the existing account."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": f"The username {username} is taken; choose another. "
                                           "A person who already has an account joins through an invitation."})
    user = User(username=username, email=email, is_staff=role != Role.CUSTOMER)
    if password is None:
        user.set_unusable_password()
    else:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


def _add_member(*, actor, user, organization: Organization, role: str, is_active: bool = True) -> Membership:
    """Write a membership (inside the caller's transaction) and publish `membership.created`."""
    if Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError({"user": f"{user.username} is already a member of {organization.name}."})
    if ServiceAccount.objects.filter(user=user).exists():
        raise ValidationError({"user": f"{user.username} is a service account: it belongs to one organization only."})
    membership = Membership(user=user, organization=organization, role=role, is_active=is_active)
    membership.full_clean()
    membership.save()
    if role != Role.CUSTOMER and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    publish(
        "membership.created",
        tenant=_tenant_of(organization),
        payload={"id": membership.pk, "user_id": user.pk, "organization_id": organization.pk, "role": role},
        actor=actor,
    )
    return membership


def _tenant_of(organization: Organization) -> Organization | None:
    if organization.kind == OrgKind.TENANT:
        return organization
    return organization.parent if organization.kind == OrgKind.CUSTOMER else None


def membership_create(
    *,
    actor,
    organization: Organization,
    role: str,
    user=None,
    user_id: int | None = None,
    username: str | None = None,
    email: str = "",
    is_active: bool = True,
) -> Membership:
    """Give a person a role in an organization: a `user` (or `user_id`) already within the actor's
    members (anyone, for platform admins), or a new account named `username` (no usable password;
    they set one through the reset flow). Everyone else joins by invitation (`invitation_create`)."""
    _check_may_grant(actor, organization, role)
    with transaction.atomic():
        if user is not None or user_id is not None:
            user = _addable_user(actor, user.pk if user is not None else user_id)
        elif username:
            user = _new_account(username=username, email=email, role=role)
        else:
            raise ValidationError({"username": "Name a person already in your organization or a new username."})
        return _add_member(actor=actor, user=user, organization=organization, role=role, is_active=is_active)


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


# -- invitations -------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, actor, organization: Organization, email: str, role: str) -> Invitation:
    """Invite a person by e-mail to hold `role` in `organization` (a manager of it; the role no
    higher than the actor's). The token goes out only in the e-mail; a hash is stored. If the
    mail cannot be sent, nothing is kept."""
    _check_may_grant(actor, organization, role)
    email = User.objects.normalize_email(email).strip().lower()
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # a pending invitation past its expiry no longer blocks a new one
        Invitation.objects.filter(organization=organization, email=email, status=S.PENDING, expires_at__lte=now).update(status=S.EXPIRED)
        if Invitation.objects.filter(organization=organization, email=email, status=S.PENDING).exists():
            raise ValidationError({"email": f"{email} already has a pending invitation to {organization.name}; "
                                            "revoke it first to send a new one."})
        invitation = Invitation(
            organization=organization, tenant=_tenant_of(organization), email=email, role=role, token_hash=_token_hash(token),
            expires_at=now + timedelta(hours=settings.PORTAL_INVITATION_TTL_HOURS), invited_by=actor,
        )
        invitation.full_clean()
        invitation.save()
    try:
        _send_invitation(invitation, token)
    except Exception as exc:  # SMTP down or refused: an invitation nobody received is useless
        invitation.delete()
        raise ValidationError(f"The invitation to {email} could not be sent ({exc}); try again later.") from exc
    _publish_invitation("invitation.created", invitation, actor)
    return invitation


def _send_invitation(invitation: Invitation, token: str) -> None:
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "The portal"
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("invitation-accept")
    send_mail(
        subject=f"Invitation to join {invitation.organization.name}",
        message=(
            f"Hello,\n\n{inviter} invites you to join {invitation.organization.name} as "
            f"{invitation.get_role_display().lower()}.\n\n"
            f"Invitation code: {token}\n\n"
            f"To accept, send the code to {url}: signed in with your existing account ({{\"token\": \"...\"}}), "
            f"or to create an account ({{\"token\": \"...\", \"username\": \"...\", \"password\": \"...\"}}).\n"
            f"The invitation expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. If you did not expect it, ignore this mail.\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


INVALID_TOKEN = "This invitation code is not valid; check the e-mail, or ask for a new invitation."


def invitation_accept(*, token: str, user=None, username: str = "", password: str = "") -> Membership:
    """Accept an invitation with its token: a signed-in `user` joins with their account; otherwise
    a new account `username` with `password` is created (its e-mail: the invited address). The
    invitation is used once; revoked and expired ones are refused."""
    if not token:
        raise ValidationError({"token": "Send the invitation code from the e-mail."})
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().select_related("organization").filter(token_hash=_token_hash(token)).first()
        if invitation is None:
            raise ValidationError({"token": INVALID_TOKEN})
        _check_acceptable(invitation)
        if user is None:
            if not username or not password:
                raise ValidationError({"username": "Sign in to accept with your account, or choose a username and a password."})
            user = _new_account(username=username, email=invitation.email, role=invitation.role, password=password)
        membership = _add_member(actor=user, user=user, organization=invitation.organization, role=invitation.role)
        invitation.status, invitation.accepted_by, invitation.accepted_at = S.ACCEPTED, user, timezone.now()
        invitation.save(update_fields=["status", "accepted_by", "accepted_at", "updated_at"])
        _publish_invitation("invitation.accepted", invitation, user)
    return membership


def _check_acceptable(invitation: Invitation) -> None:
    refusals = {
        S.ACCEPTED: "This invitation was already accepted.",
        S.REVOKED: "This invitation was revoked; ask for a new one.",
        S.EXPIRED: f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one.",
    }
    if invitation.current_status in refusals:
        raise ValidationError({"token": refusals[invitation.current_status]})


def invitation_revoke(invitation: Invitation, *, actor) -> Invitation:
    """Withdraw a pending invitation (its managers; the role no higher than the actor's)."""
    _check_may_grant(actor, invitation.organization, invitation.role)
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.current_status != S.PENDING:
            raise ValidationError(f"This invitation is {invitation.current_status}; only pending invitations are revoked.")
        invitation.status = S.REVOKED
        invitation.save(update_fields=["status", "updated_at"])
        _publish_invitation("invitation.revoked", invitation, actor)
    return invitation


def _publish_invitation(name: str, invitation: Invitation, actor) -> None:
    # no address in the payload: events outlive the invitation and its erasure
    payload = {"id": invitation.pk, "organization_id": invitation.organization_id, "role": invitation.role}
    publish(name, tenant=invitation.tenant_id, payload=payload, actor=actor)
