"""Staff two-factor sign-in (django-otp TOTP), decided per organization.

Each organization says whether its staff must confirm a TOTP authenticator before the admin opens
(`Organization.require_staff_mfa`: inherit / on / off; inherit means `PORTAL_ADMIN_REQUIRE_OTP`,
on by default in production). A person in several organizations must confirm if any of them
requires it; platform staff follow the platform organization, and so do staff accounts without a
membership (a superuser). The password logs in as usual; until the session is verified, every
admin page redirects to `/admin/mfa/`, which asks for the current code — or, for someone without a
confirmed device yet, enrols one (secret + otpauth URI, confirmed by a first code) when
`PORTAL_MFA_SELF_ENROLL` allows. The session API refuses such a session too, and the JWT login
(`POST /api/v1/auth/token`) asks the same people for `otp_token`; tokens already issued stay valid.
A sign-in through single sign-on whose `amr`/`acr` the organization trusts (apps/tenants/sso,
docs/sso.md) marks the session with `SSO_MFA_SESSION_KEY`, which counts as confirmed.
Organizations live one layer up (apps.tenants), so they are looked up by app label.
"""

from __future__ import annotations

import base64
from functools import update_wrapper

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from rest_framework.authentication import SessionAuthentication

from .choices import OrgKind, StaffMfa
from .tenancy import memberships_of

_PENDING_ATTR = "_portal_mfa_pending"
# Set by the SSO callback (apps/tenants/sso) when the provider's amr/acr satisfy every rule that applies.
SSO_MFA_SESSION_KEY = "portal_mfa_by_sso"


def organization_requires_mfa(org) -> bool:
    rule = getattr(org, "require_staff_mfa", StaffMfa.INHERIT)
    if rule == StaffMfa.ON:
        return True
    if rule == StaffMfa.OFF:
        return False
    return bool(settings.PORTAL_ADMIN_REQUIRE_OTP)


def mfa_required(user) -> bool:
    """Whether this staff user must confirm a TOTP device before using the admin."""
    if not (getattr(user, "is_authenticated", False) and user.is_active and user.is_staff):
        return False
    orgs = [m.organization for m in memberships_of(user)]
    if not orgs:
        platform = apps.get_model("tenants", "Organization").objects.filter(kind=OrgKind.PLATFORM).first()
        if platform is None:
            return bool(settings.PORTAL_ADMIN_REQUIRE_OTP)
        orgs = [platform]
    return any(organization_requires_mfa(org) for org in orgs)


def mfa_pending(request) -> bool:
    """A staff session that logged in with its password but has not confirmed its device yet."""
    cached = getattr(request, _PENDING_ATTR, None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    verified = getattr(user, "is_verified", None)
    session = getattr(request, "session", None)
    by_sso = bool(session is not None and session.get(SSO_MFA_SESSION_KEY))
    pending = bool(user is not None and mfa_required(user) and not (callable(verified) and verified()) and not by_sso)
    setattr(request, _PENDING_ATTR, pending)
    return pending


def confirmed_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def _enrolment_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


class TokenForm(forms.Form):
    otp_token = forms.RegexField(
        regex=r"^\s*\d{6,8}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6-digit code your authenticator app shows now."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def check(self, device) -> bool:
        allowed, extra = device.verify_is_allowed()
        if not allowed:
            wait = extra.get("locked_until")
            self.add_error("otp_token", "Too many wrong codes; wait a little and try again." + (f" (until {wait:%H:%M:%S})" if wait else ""))
            return False
        if not device.verify_token(self.cleaned_data["otp_token"].strip()):
            self.add_error("otp_token", "That code is not valid (check the time on your phone and enter the current code).")
            return False
        return True


def _next_url(request) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return reverse("admin:index")
    return nxt


@never_cache
def mfa_view(request):
    """Confirm the session with a TOTP code, enrolling a first device if the person has none."""
    from django_otp import login as otp_login

    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not user.is_staff:
        raise PermissionDenied("Two-factor sign-in is for staff accounts.")
    if not mfa_pending(request):
        return HttpResponseRedirect(_next_url(request))
    device = confirmed_device(user)
    enrolling = device is None
    if enrolling:
        if not settings.PORTAL_MFA_SELF_ENROLL:
            return _render(request, form=None, device=None, enrolling=True)
        device = _enrolment_device(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and form.check(device):
        if enrolling:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        otp_login(request, device)
        setattr(request, _PENDING_ATTR, False)
        return HttpResponseRedirect(_next_url(request))
    return _render(request, form=form, device=device, enrolling=enrolling)


def _render(request, *, form, device, enrolling):
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor sign-in",
        "form": form,
        "enrolling": enrolling,
        "self_enroll": settings.PORTAL_MFA_SELF_ENROLL,
        "next": _next_url(request),
    }
    if enrolling and device is not None:
        context["secret"] = base64.b32encode(device.bin_key).decode().rstrip("=")
        context["config_url"] = device.config_url
    return TemplateResponse(request, "core/mfa.html", context)


class PortalAdminSite(admin.AdminSite):
    """Django's admin site, closed to staff sessions that still owe their second factor (they are
    sent to `/admin/mfa/`). Installed on `admin.site` by config/urls.py."""

    def has_permission(self, request):
        return super().has_permission(request) and not mfa_pending(request)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def gate(request, *args, **kwargs):
            if request.user.is_active and request.user.is_staff and mfa_pending(request):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return view(request, *args, **kwargs)  # leaving is always allowed
                return redirect_to_login(request.get_full_path(), reverse("admin-mfa"))
            return inner(request, *args, **kwargs)

        return update_wrapper(gate, inner)

    def login(self, request, extra_context=None):
        if request.method == "GET" and request.user.is_authenticated and request.user.is_staff and mfa_pending(request):
            return redirect_to_login(request.GET.get("next") or reverse("admin:index", current_app=self.name), reverse("admin-mfa"))
        return super().login(request, extra_context)


class PortalSessionAuthentication(SessionAuthentication):
    """DRF session authentication that does not accept a session still owing its second factor."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and mfa_pending(request._request):
            return None
        return result
