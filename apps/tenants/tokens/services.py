"""Every write to service accounts and API tokens (issue 19.1; docs/api-tokens.md).

Rules: a token acts within one organization with a role no higher than its issuer's (a person's
own membership there; for a service account's token, the service account's role and the issuing
manager's). The secret is returned once by `api_token_create` and never stored: only its SHA-256
and its first characters. Creation, revocation and (at most once a minute per token) use are
audited as events (`config.created`/`config.updated` from apps.core.audit, `api_token.used`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core.audit import config_change
from apps.core.choices import ROLE_RANK, OrgKind, Role
from apps.core.events import publish
from apps.core.policy import policy

from ..models import Membership, Organization
from ..services import _check_may_grant, _tenant_of
from .models import ApiToken, ServiceAccount

User = get_user_model()
log = logging.getLogger(__name__)

TOKEN_PREFIX = "opp_"  # tells a portal token from a JWT (which starts with "eyJ")
SECRET_LENGTH = 40  # base62 characters: ~238 bits
SHOWN = len(TOKEN_PREFIX) + 8  # characters kept in clear to tell tokens apart
TOKEN_SHAPE = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9]{{{SECRET_LENGTH}}}")
_ALPHABET = string.ascii_letters + string.digits
# last use is written when older than this, or when the address changed and older than SAME_IP_BURST
TOUCH_EVERY = timedelta(seconds=60)
ADDRESS_CHANGE_EVERY = timedelta(seconds=5)
# what marks a user object authenticated by an API token (set by the authentication class)
TOKEN_ATTR = "portal_api_token_id"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_secret() -> str:
    return TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


def _no_nul(**values) -> None:
    bad = {k: "NUL characters are not allowed." for k, v in values.items() if isinstance(v, str) and "\x00" in v}
    if bad:
        raise ValidationError(bad)


def _refuse_token_actor(actor, what: str) -> None:
    """Tokens and service accounts are made by people signed in (JWT or admin), never by a token:
    a leaked token must not be able to mint a longer-lived one."""
    if actor is not None and getattr(actor, TOKEN_ATTR, None) is not None:
        raise PermissionDenied(f"An API token cannot {what}; sign in (POST /api/v1/auth/token or the admin) to do it.")


def _member_role(user, organization: Organization) -> str | None:
    """The user's current role in `organization` (None: no active membership there, or the
    organization is suspended or deleted)."""
    if organization.status in ("suspended", "deleted"):
        return None
    membership = Membership.objects.filter(user=user, organization=organization, is_active=True).first()
    if membership is None:
        return None
    return Role.CUSTOMER if organization.kind == OrgKind.CUSTOMER else membership.role


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}."})


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future (or empty for a token that does not expire)."})


# -- service accounts -------------------------------------------------------------------------


def _service_username(organization: Organization, name: str) -> str:
    base = f"svc.{organization.slug}.{slugify(name) or 'account'}"[:140]
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def service_account_create(
    *, actor, organization: Organization, name: str, role: str, description: str = "", is_active: bool = True
) -> ServiceAccount:
    """A new service account in `organization` (its owners and admins; the role no higher than
    the actor's): a user that cannot sign in, with one membership carrying `role`."""
    _refuse_token_actor(actor, "create service accounts")
    _no_nul(name=name, description=description)
    _check_role(role)
    _check_may_grant(actor, organization, role)
    name = (name or "").strip()
    with transaction.atomic():
        if ServiceAccount.objects.filter(organization=organization, name=name).exists():
            raise ValidationError({"name": f"{organization.name} already has a service account named {name!r}."})
        account = ServiceAccount(
            organization=organization,
            tenant=_tenant_of(organization),
            name=name,
            role=role,
            description=description,
            is_active=is_active,
            created_by=actor,
        )
        account.full_clean(exclude=["user"])
        user = User(username=_service_username(organization, name), is_staff=False, first_name=name[:150])
        user.set_unusable_password()
        user.save()
        account.user = user
        with config_change(account, actor=actor):
            account.save()
        membership = Membership(user=user, organization=organization, role=role, is_active=is_active)
        membership.full_clean()
        membership.save()
    return account


def service_account_update(
    account: ServiceAccount,
    *,
    actor,
    name: str | None = None,
    description: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
    **_ignored,
) -> ServiceAccount:
    """Rename, re-describe, change the role of, or (de)activate a service account. Its tokens
    act with at most its current role; a deactivated account's tokens are refused at once."""
    _refuse_token_actor(actor, "change service accounts")
    _no_nul(name=name, description=description)
    _check_may_grant(actor, account.organization, account.role)
    if role is not None:
        _check_role(role)
        _check_may_grant(actor, account.organization, role)
    with transaction.atomic():
        account = ServiceAccount.objects.select_for_update().select_related("organization").get(pk=account.pk)
        with config_change(account, actor=actor):
            for field, value in (
                ("name", name.strip() if name is not None else None),
                ("description", description),
                ("role", role),
                ("is_active", is_active),
            ):
                if value is not None:
                    setattr(account, field, value)
            account.full_clean(exclude=["user"])
            if (
                ServiceAccount.objects.filter(organization=account.organization, name=account.name)
                .exclude(pk=account.pk)
                .exists()
            ):
                raise ValidationError(
                    {"name": f"{account.organization.name} already has a service account named {account.name!r}."}
                )
            account.save()
        membership = Membership.objects.get(user_id=account.user_id, organization=account.organization)
        if (membership.role, membership.is_active) != (account.role, account.is_active):
            membership.role, membership.is_active = account.role, account.is_active
            membership.save(update_fields=["role", "is_active", "updated_at"])
    return account


# -- tokens -----------------------------------------------------------------------------------


def api_token_create(
    *,
    actor,
    organization: Organization,
    name: str,
    role: str | None = None,
    expires_at: datetime | None = None,
    service_account: ServiceAccount | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret (returned this once). Personal (no `service_account`): the
    actor's own, in an organization where they are an active member, the role at most theirs
    there (default: theirs). For a service account: its organization's owners and admins, the role
    at most the account's and the actor's (default: the account's)."""
    _refuse_token_actor(actor, "create API tokens")
    _no_nul(name=name)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the token after what will use it (e.g. 'grafana alerts')."})
    if actor is None:
        raise PermissionDenied("A token is issued by a person.")
    _check_expiry(expires_at)
    if service_account is not None:
        if service_account.organization_id != organization.pk:
            raise ValidationError({"service_account": "This service account belongs to another organization."})
        if not ServiceAccount.objects.visible_to(actor, "change").filter(pk=service_account.pk).exists():
            raise PermissionDenied("Only owners and admins of its organization issue tokens for a service account.")
        if not service_account.is_active:
            raise ValidationError({"service_account": "This service account is deactivated; activate it first."})
        ceiling, principal = service_account.role, service_account.user
        role = role or ceiling
        _check_role(role)
        if not policy.may_grant_role(actor, role):
            raise PermissionDenied(f"You cannot issue a token with the {role} role: it is above your own.")
    else:
        ceiling, principal = _member_role(actor, organization), actor
        if ceiling is None:
            raise PermissionDenied(
                f"You are not an active member of {organization.name}; a personal token acts within an "
                "organization you belong to."
            )
        role = role or ceiling
        _check_role(role)
    if ROLE_RANK.get(role, 0) > ROLE_RANK.get(ceiling, 0):
        whose = "the service account's" if service_account is not None else "your"
        raise PermissionDenied(
            f"A token cannot have the {role} role: it is above {whose} role in {organization.name} ({ceiling})."
        )
    secret = _new_secret()
    token = ApiToken(
        organization=organization,
        tenant=_tenant_of(organization),
        user=principal,
        service_account=service_account,
        name=name,
        role=role,
        prefix=secret[:SHOWN],
        token_hash=hash_token(secret),
        expires_at=expires_at,
        created_by=actor,
    )
    token.full_clean()
    with transaction.atomic(), config_change(token, actor=actor):
        token.save()
    return token, secret


def api_token_revoke(token: ApiToken, *, actor) -> ApiToken:
    """Revoke a token (its holder, or its organization's owners and admins): refused from the
    next request on."""
    if actor is not None and not ApiToken.objects.visible_to(actor, "change").filter(pk=token.pk).exists():
        raise PermissionDenied("You can revoke your own tokens; owners and admins revoke any of their organization's.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise ValidationError(f"This token was already revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
        with config_change(token, actor=actor, ignore=("last_used_at", "last_used_ip")):
            token.revoked_at, token.revoked_by = timezone.now(), actor
            token.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
    return token


def api_token_used(
    *,
    token_id: int,
    tenant_id: int | None,
    user,
    prefix: str,
    last_used_at,
    last_used_ip,
    address: str | None,
    method: str,
    path: str,
    now: datetime,
) -> bool:
    """Record a use: last time and address, written when the stored ones are older than a
    minute (or the address changed, at most every few seconds), claimed with a conditional
    update so concurrent requests write once; each write is an `api_token.used` event — the
    audit of use, sampled per token per minute (docs/api-tokens.md). True when written."""
    due = last_used_at is None or now - last_used_at >= TOUCH_EVERY
    moved = (
        address is not None
        and str(last_used_ip or "") != address
        and (last_used_at is None or now - last_used_at >= ADDRESS_CHANGE_EVERY)
    )
    if not (due or moved):
        return False
    claim = ApiToken.objects.filter(pk=token_id)
    claim = claim.filter(last_used_at__isnull=True) if last_used_at is None else claim.filter(last_used_at=last_used_at)
    try:
        with transaction.atomic():
            if not claim.update(last_used_at=now, last_used_ip=address):
                return False  # another request wrote it meanwhile
            publish(
                "api_token.used",
                tenant=tenant_id,
                actor=user,
                payload={
                    "id": token_id,
                    "prefix": prefix,
                    "address": address,
                    "method": method,
                    "path": path[:200],
                    "previous_use": last_used_at.isoformat() if last_used_at else None,
                },
            )
    except DatabaseError:  # bookkeeping never fails the request it records (a read-only or strained database)
        log.warning("could not record the use of API token %s", prefix, exc_info=True)
        return False
    return True
