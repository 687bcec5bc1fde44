"""API authentication: JWT (simplejwt) with messages a person can act on."""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken


class PortalJWTAuthentication(JWTAuthentication):
    """Bearer JWT; an invalid, expired or revoked access token is a 401 that says which."""

    def get_validated_token(self, raw_token):
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
        user = super().get_user(validated_token)
        # Tokens issued before a revoke-all are refused even if not yet expired.
        from apps.core.api.tokens import token_revoked

        if token_revoked(user, validated_token):
            raise InvalidToken({"detail": "This token was revoked. Log in again at POST /api/v1/auth/token.", "code": "token_revoked"})
        return user
