"""API authentication: JWT (simplejwt) with messages a person can act on.

The user row and its acting contexts (memberships, organizations) are kept per process
(`apps.core.tenancy.kept_user`: a version token bumped when users, memberships or organizations
change), so a request reads neither while they are unchanged. What must hold at once — the user
exists, is active, and the token is not older than a revoke-all — is read from the database on
every request in one small query (`apps.core.api.tokens.security_state`)."""

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings

from apps.core.api.tokens import security_state, token_revoked
from apps.core.tenancy import kept_user

MAX_VALIDATED = 10000  # tokens per process whose signature was checked; past it the memo starts again
_validated: dict[bytes, object] = {}


class PortalJWTAuthentication(JWTAuthentication):
    """Bearer JWT; an invalid, expired or revoked access token is a 401 that says which. A token
    whose signature and claims were checked once in this process is only checked for expiry
    again (the revocation mark is checked on every request in `get_user`)."""

    def get_validated_token(self, raw_token):
        token = _validated.get(raw_token)
        if token is not None:
            try:
                token.check_exp()
                return token
            except TokenError:
                _validated.pop(raw_token, None)
        token = self._validate(raw_token)
        if len(_validated) >= MAX_VALIDATED:
            _validated.clear()
        _validated[raw_token] = token
        return token

    def _validate(self, raw_token):
        try:
            return super().get_validated_token(raw_token)
        except InvalidToken as exc:
            messages = exc.detail.get("messages", []) if isinstance(exc.detail, dict) else []
            reason = str(messages[0].get("message", "")) if messages else ""
            if "expired" in reason.lower():
                text = "Your access token has expired. Get a new one from POST /api/v1/auth/refresh."
            else:
                text = "Your access token is not valid (malformed, wrong signature or wrong type). Log in again at POST /api/v1/auth/token."
            raise InvalidToken({"detail": text, "code": "token_not_valid"}) from exc

    def get_user(self, validated_token):
        """simplejwt's checks (unknown user, inactive user) and the revocation mark, against the
        database; the user object itself from the per-process memo."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        state = security_state(user_id)
        user = kept_user(user_id) if state is not None else None
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if not state.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        user.is_active = True  # the database's answer of this request, not the kept row's
        if token_revoked(state, validated_token):
            raise InvalidToken({"detail": "This token was revoked. Log in again at POST /api/v1/auth/token.", "code": "token_revoked"})
        return user
