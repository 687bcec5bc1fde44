"""Revoking every token of a user: refresh tokens are blacklisted, access tokens issued before
the revocation are refused (their `iat` is older than the user's revocation mark)."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

_KEY = "portal:tokens-revoked-at:{}"


def revoked_at(user) -> float | None:
    from apps.core.models import UserSecurity

    value = cache.get(_KEY.format(user.pk))
    if value is None:
        row = UserSecurity.objects.filter(user_id=user.pk).values_list("tokens_revoked_at", flat=True).first()
        value = row.timestamp() if row else 0.0
        cache.set(_KEY.format(user.pk), value, 300)
    return value or None


def mark_revoked(user, at) -> None:
    cache.set(_KEY.format(user.pk), at.timestamp(), 300)


def token_revoked(user, token) -> bool:
    mark = revoked_at(user)
    issued = token.get("iat")
    # iat has whole seconds: a token from the second of the revocation itself stays valid.
    return bool(mark and issued is not None and issued < int(mark))


def now_ts() -> float:
    return timezone.now().timestamp()
