"""Token endpoints: obtain, refresh (rotating, blacklisting the old one), verify, revoke-all."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenBackendError, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
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


def _locked_out() -> exceptions.Throttled:
    """The answer to a locked-out sign-in: 429 with Retry-After, as the admin's lockout."""
    from django.conf import settings

    cool_off = getattr(settings, "AXES_COOLOFF_TIME", None)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    when = f"try again in {minutes} minutes" if minutes else "try again later"
    return exceptions.Throttled(
        wait=cool_off.total_seconds() if cool_off else None,
        detail=f"Too many failed logins for this account from this address: {when}, or ask an administrator to unlock it.")


class TokenObtainSerializer(TokenObtainPairSerializer):
    """Username and password; and, for staff whose organization requires two-factor sign-in
    (apps/core/mfa.py, the same rule as the admin), the current code of their TOTP authenticator."""

    otp_token = serializers.CharField(required=False, allow_blank=True, write_only=True, max_length=16,
                                      help_text="Current 6-digit code of the TOTP authenticator; required for staff whose organization requires two-factor sign-in.")

    def validate(self, attrs):
        try:
            data = super().validate(attrs)  # the password: 401 when wrong, as before
        except exceptions.AuthenticationFailed:
            if getattr(self.context.get("request"), "axes_locked_out", False):  # set by django-axes
                raise _locked_out() from None
            refusal = getattr(self.context.get("request"), "portal_sign_in_refusal", None)  # passwords off (SSO only)
            if refusal:
                raise exceptions.AuthenticationFailed(refusal, code="password_login_off") from None
            raise
        from apps.core.mfa import confirmed_device, mfa_required

        if not mfa_required(self.user):
            return data
        device = confirmed_device(self.user)
        if device is None:
            raise exceptions.PermissionDenied(
                "Your organization requires two-factor sign-in and this account has no confirmed authenticator: "
                "sign in to the admin (/admin/) once to enrol one, or ask a platform administrator.", code="otp_enrolment_required")
        code = (attrs.get("otp_token") or "").strip()
        if not code:
            raise exceptions.AuthenticationFailed(
                "Your organization requires two-factor sign-in: send otp_token with the current code of your authenticator.", code="otp_required")
        if not device.verify_token(code):
            raise exceptions.AuthenticationFailed("The authenticator code is wrong or expired; send the current one.", code="otp_invalid")
        return data


class TokenObtainView(TokenObtainPairView):
    """Exchange username and password (and, where the organization requires two-factor sign-in,
    `otp_token`) for an access token (15 min) and a refresh token (7 days)."""

    serializer_class = TokenObtainSerializer
    throttle_scope = "auth"

    def get_throttles(self):
        from rest_framework.throttling import ScopedRateThrottle

        return [ScopedRateThrottle()]


class TokenRefreshRotateView(TokenRefreshView):
    """Exchange a refresh token for a new access and refresh token; the old refresh is blacklisted.
    Presenting a refresh token that was already used (rotated away) or revoked revokes every token
    of its user (OAuth 2.0 Security BCP: whoever replays it may hold the newer ones)."""

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, InvalidToken) as exc:
            _revoke_if_replayed(request.data.get("refresh") if hasattr(request.data, "get") else None)
            raise _explain(exc, "refresh") from exc
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


def _revoke_if_replayed(raw) -> None:
    """A genuine (signed, unexpired) refresh token that is blacklisted was presented again:
    revoke every token of its user."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.state import token_backend
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

    from apps.core.services import refresh_token_replayed

    if not isinstance(raw, str):
        return
    try:
        payload = token_backend.decode(raw, verify=True)
    except (TokenBackendError, TokenError):
        return  # forged or expired: nothing to learn from it
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh" or not BlacklistedToken.objects.filter(token__jti=payload.get("jti")).exists():
        return
    user = get_user_model().objects.filter(pk=payload.get(api_settings.USER_ID_CLAIM)).first()
    if user is not None:
        refresh_token_replayed(user=user, jti=payload.get("jti"))


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
