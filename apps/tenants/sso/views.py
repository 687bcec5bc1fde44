"""The admin's sign-in pages for SSO: the login page (password form + SSO button), the start of
the OpenID Connect flow and its callback (mozilla-django-oidc's views with the portal's messages)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.core.mfa import SSO_MFA_SESSION_KEY

from .backends import REFUSAL_ATTR

NOT_COMPLETED = "Single sign-on did not complete; start again with the button below."


class PortalLoginForm(AdminAuthenticationForm):
    """The admin's password form; says so plainly when the password was right but the person's
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
    """The admin login page with the SSO button when a provider is configured."""
    context = {"sso_enabled": settings.PORTAL_SSO_ENABLED, "sso_label": settings.PORTAL_SSO_LABEL}
    return admin.site.login(request, extra_context=context)


def _to_login(request, text: str):
    messages.error(request, text)
    nxt = request.session.get("oidc_login_next") if hasattr(request, "session") else None
    url = reverse("admin:login")
    return HttpResponseRedirect(f"{url}?next={nxt}" if nxt else url)


class SsoStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce and PKCE in the session)."""

    def get(self, request):
        if not settings.PORTAL_SSO_ENABLED:
            return _to_login(request, "Single sign-on is not configured on this portal.")
        return super().get(request)


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
