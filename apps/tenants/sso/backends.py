"""Authentication backends: the OpenID Connect sign-in (mozilla-django-oidc with the portal's
claim checks and mapping) and the password backend that honours an organization's
"no local passwords" rule, for the admin and the JWT login alike."""

from __future__ import annotations

import logging

import jwt
import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .models import SsoProvider
from .services import PASSWORD_OFF, SsoRefused, password_login_disabled, sso_sign_in

log = logging.getLogger("apps.tenants.sso")

# Session: state of each sign-in started through an organization's provider → that provider's slug.
PROVIDER_STATES = "portal_sso_provider_states"
# Set on the request when a sign-in is refused, so the login page can say why.
REFUSAL_ATTR = "portal_sign_in_refusal"
UNREACHABLE = "The single sign-on provider could not complete the sign-in (it did not answer or answered wrongly); try again, or ask an administrator."


def axes_exempt(request, credentials) -> bool:
    """django-axes counts failed password guesses; an SSO callback guesses nothing (the provider
    authenticated the person), and counting its refusals would lock an office's address out of SSO
    after a few colleagues without a mapping tried. `AXES_WHITELIST_CALLABLE`."""
    credentials = credentials or {}
    return "nonce" in credentials and "username" not in credentials


def _refuse(request, message: str) -> None:
    if request is not None:
        setattr(request, REFUSAL_ATTR, message)


class PortalPasswordBackend(ModelBackend):
    """Django's username/password check, refused for members of an organization that switched
    local passwords off. The refusal (after a correct password only, so it reveals nothing to a
    guesser) stops the other backends and is noted on the request for a clear message."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and password_login_disabled(user):
            log.warning("password sign-in refused for %s: their organization signs in through SSO only", user.username)
            _refuse(request, PASSWORD_OFF)
            raise PermissionDenied(PASSWORD_OFF)
        return user


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """The authorization-code flow of mozilla-django-oidc (PKCE, nonce, signature via JWKS), plus
    what it leaves to us: the ID token's issuer and audience, the userinfo subject, and the
    mapping of claims to memberships (`sso_sign_in`)."""

    provider = None  # an organization's SsoProvider for this sign-in; None: the platform provider

    def authenticate(self, request, **kwargs):
        if request is None or "state" not in request.GET:
            return None
        slug = (request.session.get(PROVIDER_STATES) or {}).get(request.GET["state"])
        if slug:
            self.provider = SsoProvider.objects.select_related("organization").filter(slug=slug, is_active=True).first()
            if self.provider is None:
                _refuse(request, "This organization's single sign-on has been switched off; ask your administrator.")
                return None
            self._use(self.provider)
        elif not settings.PORTAL_SSO_ENABLED:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError, ValueError, KeyError) as exc:
            log.warning("sso sign-in failed: %s: %s", type(exc).__name__, exc)
            _refuse(request, UNREACHABLE)
            return None

    def _use(self, provider: SsoProvider) -> None:
        self.OIDC_OP_TOKEN_ENDPOINT = provider.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = provider.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = provider.jwks_endpoint
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = provider.get_secret()
        self.OIDC_RP_SIGN_ALGO, self.OIDC_RP_IDP_SIGN_KEY = "RS256", None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        if "nonce" not in kwargs:
            return payload  # a signed userinfo answer (mozilla passes the nonce only for the ID token)
        issuer = self.provider.issuer if self.provider is not None else settings.OIDC_OP_ISSUER
        if not issuer or payload.get("iss") != issuer:
            raise SuspiciousOperation(f"ID token issued by {payload.get('iss')!r}, expected {issuer!r}")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token was issued for another client")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if str(userinfo.get("sub")) != str(payload.get("sub")):
            raise SuspiciousOperation("userinfo describes another subject than the ID token")
        # The person's attributes from userinfo; how they signed in (amr, acr, auth_time) only from the ID token.
        claims = {**userinfo, **payload}
        try:
            result = sso_sign_in(claims=claims, issuer=str(payload["iss"]), provider=self.provider)
        except SsoRefused as exc:
            _refuse(self.request, str(exc))
            return None
        result.user.portal_sso_mfa = result.mfa_satisfied
        return result.user
