"""Revoking every token of a user: refresh tokens are blacklisted, access tokens issued before
the revocation are refused (their `iat` is older than the user's revocation mark).

The mark lives in PostgreSQL only (`UserSecurity.tokens_revoked_at`) and is read with the user's
active flag in one small query per authenticated request (`security_state`): no cache copy can
outlive a revocation, whatever Redis does meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

_SQL: str | None = None


@dataclass(frozen=True)
class SecurityState:
    is_active: bool
    revoked_at: float | None  # POSIX time of the last revoke-all


def _sql() -> str:
    global _SQL
    if _SQL is None:
        from django.contrib.auth import get_user_model

        from apps.core.models import UserSecurity

        q = connection.ops.quote_name
        user, sec = get_user_model()._meta, UserSecurity._meta
        _SQL = (f"SELECT u.{q(user.get_field('is_active').column)}, s.{q(sec.get_field('tokens_revoked_at').column)} "
                f"FROM {q(user.db_table)} u LEFT JOIN {q(sec.db_table)} s ON s.{q(sec.get_field('user').column)} = u.{q(user.pk.column)} "
                f"WHERE u.{q(user.pk.column)} = %s")
    return _SQL


def security_state(user_id) -> SecurityState | None:
    """Whether the user exists, is active, and when their tokens were last revoked — from the
    database, in one query (None: no such user)."""
    from django.contrib.auth import get_user_model

    try:
        pk = get_user_model()._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    if connection.health_check_enabled and not connection.health_check_done and connection.connection is not None and not connection.in_atomic_block:
        # This query is the request's first: let it be the connection's health check too (Django
        # would send a `SELECT 1` first). A connection PostgreSQL dropped fails it: reconnect once.
        connection.health_check_done = True
        try:
            row = _read(pk)
        except (OperationalError, InterfaceError):
            connection.close()
            row = _read(pk)
    else:
        row = _read(pk)
    if row is None:
        return None
    active, mark = row
    if isinstance(mark, str):  # SQLite answers text
        mark = parse_datetime(mark)
    if mark is not None and timezone.is_naive(mark):
        mark = mark.replace(tzinfo=UTC)
    return SecurityState(bool(active), mark.timestamp() if mark is not None else None)


def _read(pk):
    with connection.cursor() as cur:
        cur.execute(_sql(), [pk])
        return cur.fetchone()


def token_revoked(state: SecurityState, token) -> bool:
    issued = token.get("iat")
    # iat has whole seconds: a token from the second of the revocation itself stays valid.
    return bool(state.revoked_at and issued is not None and issued < int(state.revoked_at))
