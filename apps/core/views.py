"""Small site-wide views: home redirect, organization switcher, guarded metrics (health: health.py)."""

import hmac

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from .mfa import mfa_pending
from .middleware import SESSION_KEY
from .tenancy import memberships_of


def home(request):
    return redirect("admin:index")


@require_POST
@staff_member_required
def switch_organization(request):
    """Admin: act within another of the user's organizations (kept in the session)."""
    slug = request.POST.get("organization", "")
    if any(m.organization.slug == slug for m in memberships_of(request.user)):
        request.session[SESSION_KEY] = slug
    nxt = request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        nxt = "/admin/"
    return HttpResponseRedirect(nxt)


def staff_or_metrics_token(request) -> bool:
    """A staff session (past MFA) or `Authorization: Bearer $METRICS_TOKEN` (/metrics, /health/status)."""
    header = request.headers.get("Authorization", "")
    token_ok = bool(settings.METRICS_TOKEN) and hmac.compare_digest(header, f"Bearer {settings.METRICS_TOKEN}")
    return token_ok or (request.user.is_authenticated and request.user.is_staff and not mfa_pending(request))


def metrics_view(request):
    """Prometheus metrics for staff sessions or `Authorization: Bearer $METRICS_TOKEN`: every
    gunicorn process's counters (multiprocess mode) and the domain gauges (apps/core/metrics.py)."""
    if not staff_or_metrics_token(request):
        return HttpResponseForbidden("Metrics need a staff login or the metrics bearer token.")
    from .metrics import exposition

    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
