"""`Authorization: Bearer opp_…` (or `Token opp_…`): API tokens beside JWT (docs/api-tokens.md).

Listed before the JWT class in DEFAULT_AUTHENTICATION_CLASSES: a bearer value without the
`opp_` prefix is left to it untouched (a JWT starts with `eyJ`). Per request, like the JWT path:
one small query reads the token row, its user's active flag and revoke-all mark (so a revoked
or expired token is refused at once, whatever a cache holds), and the user with its acting
contexts comes from the per-process principal memo (`apps.core.tenancy.kept_user`, bumped when
memberships change, trusted at most TENANCY_VERSION_TTL seconds). The request then acts within
the token's organization only, with min(token role, the user's current role there); no
second factor is asked. Last use is written at most once a minute (`api_token_used`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from apps.core.choices import ROLE_RANK
from apps.core.tenancy import acting, choose_organization, kept_user, pin_acting

from .services import TOKEN_ATTR, TOKEN_PREFIX, TOKEN_SHAPE, api_token_used, hash_token

_SQL: str | None = None
HELP = "Create one at POST /api/v1/tokens/ (signed in) or in the admin."


@dataclasses.dataclass(frozen=True)
class TokenAuth:
    """`request.auth` for a token-authenticated request."""

    id: int
    prefix: str
    organization_id: int
    role: str
    service_account: bool


def _sql() -> str:
    """One round trip: the token's columns the request needs, its state decided by the database
    (0 usable, 1 revoked, 2 expired, 3 created before its owner's revoke-all), the owner's active
    flag. Scalar subqueries rather than joins: cheaper to plan, and this runs on every request."""
    global _SQL
    if _SQL is None:
        from django.contrib.auth import get_user_model

        from apps.core.models import UserSecurity

        from .models import ApiToken

        q = connection.ops.quote_name
        t, u, s = ApiToken._meta, get_user_model()._meta, UserSecurity._meta

        def col(meta, name):
            return q(meta.get_field(name).column)

        ip = f"t.{col(t, 'last_used_ip')}"
        if connection.vendor == "postgresql":
            ip = f"host({ip})"  # text, as SQLite answers, instead of an inet parsed into Python objects
        cols = ", ".join(
            f"t.{col(t, f)}"
            for f in ("id", "user", "organization", "tenant", "role", "prefix", "service_account", "last_used_at")
        )
        owner = f"t.{col(t, 'user')}"
        _SQL = (
            f"SELECT {cols}, {ip}, "
            f"CASE WHEN t.{col(t, 'revoked_at')} IS NOT NULL THEN 1 WHEN t.{col(t, 'expires_at')} <= %s THEN 2 "
            f"WHEN (SELECT s.{col(s, 'tokens_revoked_at')} FROM {q(s.db_table)} s WHERE s.{col(s, 'user')} = {owner}) "
            f"> t.{col(t, 'created_at')} THEN 3 ELSE 0 END, "
            f"(SELECT u.{col(u, 'is_active')} FROM {q(u.db_table)} u WHERE u.{q(u.pk.column)} = {owner}) "
            f"FROM {q(t.db_table)} t WHERE t.{col(t, 'token_hash')} = %s"
        )
    return _SQL


def _dt(value):
    if isinstance(value, str):  # SQLite answers text
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def _refuse(detail: str, code: str):
    return exceptions.AuthenticationFailed({"detail": detail, "code": code})


def _address(request, last_ip) -> str | None:
    """The peer address as the server saw it (not X-Forwarded-For, which the client writes);
    parsed only when it differs from the stored one."""
    raw = request.META.get("REMOTE_ADDR", "")
    if last_ip is not None and raw == str(last_ip):
        return raw
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _refusal(token_id: int, prefix: str, state: int):
    """The 401 for a token the database said is unusable, with its dates (read on this rare path only)."""
    from .models import ApiToken

    token = ApiToken.objects.only("revoked_at", "expires_at").get(pk=token_id)
    if state == 1:
        return _refuse(
            f"This API token ({prefix}…) was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC. {HELP}", "token_revoked"
        )
    if state == 2:
        return _refuse(f"This API token ({prefix}…) expired on {token.expires_at:%Y-%m-%d %H:%M} UTC. {HELP}", "token_expired")
    return _refuse(f"This API token ({prefix}…) was revoked when all of its owner's tokens were revoked. {HELP}", "token_revoked")


class PortalTokenAuthentication(BaseAuthentication):
    """Portal API tokens (`opp_…`); see the module docstring."""

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, raw = header.partition(" ")
        scheme, raw = scheme.lower(), raw.strip()
        if scheme == "bearer":
            if not raw.startswith(TOKEN_PREFIX):
                return None  # a JWT: the next authentication class's
        elif scheme != "token":
            return None
        if not TOKEN_SHAPE.fullmatch(raw):
            raise _refuse(
                f"The API token is malformed: send 'Authorization: Bearer {TOKEN_PREFIX}' followed by the 40 letters "
                f"and digits shown when it was created. {HELP}",
                "token_malformed",
            )
        now = timezone.now()
        with connection.cursor() as cur:
            cur.execute(_sql(), [connection.ops.adapt_datetimefield_value(now), hash_token(raw)])
            row = cur.fetchone()
        if row is None:
            raise _refuse(f"This API token is not valid (unknown, or its owner was removed). {HELP}", "token_not_valid")
        token_id, user_id, org_id, tenant_id, role, prefix, service_account_id, last_used_at, last_ip, state, user_active = row
        if state:
            raise _refusal(token_id, prefix, state)
        user = kept_user(user_id) if user_active else None
        if user is None:
            raise _refuse(
                f"The account of this API token ({prefix}…) is deactivated; the token no longer works.", "user_inactive"
            )
        user.is_active = True  # the database's answer of this request, not the kept row's
        ctx = self._context(user, org_id, role, prefix)
        self._check_organization_header(request, ctx)
        user.is_superuser = False  # a token carries its role, never its owner's superuser flag
        setattr(user, TOKEN_ATTR, token_id)
        pin_acting(user, ctx)
        api_token_used(
            token_id=token_id,
            tenant_id=tenant_id,
            user=user,
            prefix=prefix,
            last_used_at=_dt(last_used_at),
            last_used_ip=last_ip,
            address=_address(request, last_ip),
            method=request.method,
            path=request.path,
            now=now,
        )
        return user, TokenAuth(token_id, prefix, org_id, ctx.role, service_account_id is not None)

    @staticmethod
    def _context(user, org_id: int, role: str, prefix: str):
        """The owner's acting context in the token's organization, its role capped by the token's."""
        choose_organization(user, org_id)
        try:
            ctx = acting(user)
        except DjangoPermissionDenied:
            ctx = None
        if ctx is None or ctx.organization_id != org_id:
            raise _refuse(
                f"The owner of this API token ({prefix}…) is no longer an active member of its organization "
                "(or the organization is suspended); the token no longer works.",
                "membership_gone",
            )
        if ROLE_RANK.get(role, 0) < ROLE_RANK.get(ctx.role, 0):
            return dataclasses.replace(ctx, role=role, superuser=False)
        return dataclasses.replace(ctx, superuser=False) if ctx.superuser else ctx

    @staticmethod
    def _check_organization_header(request, ctx) -> None:
        choice = request.META.get("HTTP_X_ORGANIZATION")
        if choice and choice not in (ctx.organization_slug, str(ctx.organization_id)):
            raise exceptions.PermissionDenied(
                f"This API token acts within organization {ctx.organization_slug!r} only; drop the X-Organization header "
                f"or use a token of {choice!r}."
            )


class PortalTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI: portal API tokens as a second bearer scheme beside JWT."""

    target_class = "apps.tenants.tokens.authentication.PortalTokenAuthentication"
    name = "apiTokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "opp_ API token",
            "description": "A portal API token (`opp_` + 40 letters and digits), sent as `Authorization: Bearer opp_…` "
            "or `Authorization: Token opp_…`. Acts within its organization only, with min(token role, the "
            "owner's current role). Create one at POST /api/v1/tokens/ (docs/api-tokens.md).",
        }
