"""The admin's sign-in pages for SSO: the login page (password form + SSO button), the start of
the OpenID Connect flow and its callback (mozilla-django-oidc's views with the portal's messages)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.core.admin_login import PortalAdminAuthenticationForm
from apps.core.mfa import SSO_MFA_SESSION_KEY

from .backends import PROVIDER_STATES, REFUSAL_ATTR
from .models import SsoProvider

NOT_COMPLETED = "Single sign-on did not complete; start again with the button below."


class PortalLoginForm(PortalAdminAuthenticationForm):
    """The admin's password form (customers are told it is for staff); says so plainly when the password was right but the person's
    organization signs in through SSO only."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            refusal = getattr(self.request, REFUSAL_ATTR, None)
            if refusal:
                raise forms.ValidationError(refusal, code="password_login_off") from None
            raise


def admin_login(request):
    """The admin login page with the SSO button when the platform provider is configured, and an
    organization's button when the link names it (`?sso=<slug>`; organizations are never listed)."""
    context = {"sso_enabled": settings.PORTAL_SSO_ENABLED, "sso_label": settings.PORTAL_SSO_LABEL}
    slug = request.GET.get("sso")
    if slug and len(slug) <= 60:
        context["sso_provider"] = SsoProvider.objects.filter(slug=slug, is_active=True).first()
    return admin.site.login(request, extra_context=context)


def _to_login(request, text: str):
    messages.error(request, text)
    nxt = request.session.get("oidc_login_next") if hasattr(request, "session") else None
    url = reverse("admin:login")
    return HttpResponseRedirect(f"{url}?next={nxt}" if nxt else url)


class SsoStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce and PKCE in the session):
    the platform's, or with a slug in the URL an organization's own (remembered by state)."""

    provider = None

    def get_settings(self, attr, *args):
        if attr == "OIDC_RP_SCOPES" and self.provider is not None:
            return self.provider.scopes
        return super().get_settings(attr, *args)

    def get(self, request, slug=None):
        if slug is not None:
            self.provider = SsoProvider.objects.filter(slug=slug, is_active=True).first()
            if self.provider is None:
                return _to_login(
                    request, "There is no active single sign-on under this link; ask your administrator for the right one."
                )
            self.OIDC_OP_AUTH_ENDPOINT, self.OIDC_RP_CLIENT_ID = self.provider.authorization_endpoint, self.provider.client_id
        elif not settings.PORTAL_SSO_ENABLED:
            return _to_login(request, "Single sign-on is not configured on this portal.")
        response = super().get(request)
        if self.provider is not None:
            state = parse_qs(urlsplit(response["Location"]).query)["state"][0]
            states = dict(list((request.session.get(PROVIDER_STATES) or {}).items())[-9:])  # a few tabs at most
            states[state] = self.provider.slug
            request.session[PROVIDER_STATES] = states
        return response


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; the backend exchanges it and maps
    the claims. A refusal is shown on the login page; nothing is half-written."""

    @property
    def success_url(self):
        return self.request.session.get("oidc_login_next") or reverse("admin:index")

    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation:  # a state this browser never started (replayed or another tab)
            return self.login_failure()

    def login_failure(self):
        if self.request.GET.get("error"):
            text = f"The single sign-on provider refused the sign-in ({self.request.GET['error'][:80]})."
        else:
            text = getattr(self.request, REFUSAL_ATTR, None) or NOT_COMPLETED
        return _to_login(self.request, text)

    def login_success(self):
        response = super().login_success()
        if getattr(self.user, "portal_sso_mfa", False):
            self.request.session[SSO_MFA_SESSION_KEY] = True  # the provider's amr/acr stand for the second factor
        return response
