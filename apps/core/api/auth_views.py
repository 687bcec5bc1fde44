"""Token endpoints: obtain, refresh (rotating, blacklisting the old one), verify, revoke-all."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenVerifyView


def _explain(exc: TokenError | InvalidToken, kind: str) -> InvalidToken:
    text = str(exc.args[0]) if exc.args else ""
    if isinstance(exc, InvalidToken) and isinstance(exc.detail, dict):
        text = str(exc.detail.get("detail", text))
    low = text.lower()
    if "blacklist" in low:
        msg = f"This {kind} token was revoked (used already or logged out). Log in again at POST /api/v1/auth/token."
    elif "expired" in low:
        msg = f"This {kind} token has expired. Log in again at POST /api/v1/auth/token."
    else:
        msg = f"This {kind} token is not valid (malformed, wrong signature or wrong type)."
    return InvalidToken({"detail": msg, "code": "token_not_valid"})


class TokenObtainView(TokenObtainPairView):
    """Exchange username and password for an access token (15 min) and a refresh token (7 days)."""

    throttle_scope = "auth"

    def get_throttles(self):
        from rest_framework.throttling import ScopedRateThrottle

        return [ScopedRateThrottle()]


class TokenRefreshRotateView(TokenRefreshView):
    """Exchange a refresh token for a new access and refresh token; the old refresh is blacklisted."""

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, InvalidToken) as exc:
            raise _explain(exc, "refresh") from exc
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class TokenCheckView(TokenVerifyView):
    """200 if the token is valid, 401 with the reason otherwise."""

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, InvalidToken) as exc:
            raise _explain(exc, "") from exc
        return Response({"detail": "Token is valid."}, status=status.HTTP_200_OK)


class RevokeAllView(APIView):
    """Revoke every token of the caller (or, for platform admins, of `user_id`)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=inline_serializer("RevokeAllRequest", {"user_id": serializers.IntegerField(required=False)}),
        responses=inline_serializer("RevokeAllResponse", {"revoked_refresh_tokens": serializers.IntegerField(), "detail": serializers.CharField()}),
    )
    def post(self, request):
        from django.contrib.auth import get_user_model
        from django.shortcuts import get_object_or_404

        from apps.core.services import user_revoke_tokens

        target = request.user
        user_id = request.data.get("user_id") if hasattr(request.data, "get") else None
        if user_id not in (None, ""):
            try:
                user_id = int(user_id)
            except (TypeError, ValueError):
                raise serializers.ValidationError({"user_id": "Must be a user's numeric id."}) from None
            target = get_object_or_404(get_user_model(), pk=user_id)
        count = user_revoke_tokens(actor=request.user, user=target)
        return Response({"revoked_refresh_tokens": count, "detail": "All tokens of this user are revoked."})
