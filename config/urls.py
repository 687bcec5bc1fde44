from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.api.routing import api_not_found, either_form
from apps.core.health import live_view, ready_view, status_view
from apps.core.mfa import PortalAdminSite, mfa_view
from apps.core.views import home, metrics_view, switch_organization
from apps.tenants.sso.views import PortalLoginForm, SsoCallbackView, SsoStartView, admin_login

admin.site.site_header = "opsportal"
admin.site.site_title = "opsportal"
admin.site.index_title = "Operations"
# Bulk delete bypasses services; every delete goes through a ModelAdmin's delete_model.
admin.site.disable_action("delete_selected")
# Staff whose organization requires two-factor sign-in confirm a TOTP device at /admin/mfa/ first.
admin.site.__class__ = PortalAdminSite
admin.site.login_form = PortalLoginForm  # says so when an organization has switched passwords off (SSO only)

urlpatterns = [
    # alert ingestion first: the busiest URLs, resolved without walking the routes below (~0.2 ms
    # of CPU per request through the whole API tree; docs/alerts.md)
    path("api/v1/", include("apps.alerts.api.ingest_urls")),
    path("", home, name="home"),
    path("admin/switch-organization/", switch_organization, name="switch-organization"),
    path("admin/timeline/", include("apps.dashboard.urls")),  # tenant timeline pages (apps/dashboard/views.py)
    path("admin/mfa/", mfa_view, name="admin-mfa"),
    # single sign-on (OpenID Connect, docs/sso.md): the login page with its button, the flow's start and callback
    path("admin/login/", admin_login, name="admin-login-sso"),
    path("admin/sso/login/", SsoStartView.as_view(), name="admin-sso-login"),
    path("admin/sso/<slug:slug>/login/", SsoStartView.as_view(), name="admin-sso-org-login"),
    path("admin/sso/callback/", SsoCallbackView.as_view(), name="admin-sso-callback"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves Swagger UI's init script from ?script, not inline (CSP: apps/core/csp.py)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # live/ready are answered by apps.core.health.HealthProbeMiddleware first; routed here too
    re_path(r"^health/live/?$", live_view, name="health-live"),
    re_path(r"^health/ready/?$", ready_view, name="health-ready"),
    path("health/", ready_view, name="health"),
    re_path(r"^health/status/?$", status_view, name="health-status"),
    path("metrics", metrics_view, name="metrics"),
    # heartbeat pings (healthchecks.io style): /ping/<uuid>, /ping/<uuid>/fail, /ping/<uuid>/start
    path("", include("apps.monitoring.urls")),
    # secret iCalendar feeds of on-call schedules: /oncall/feed/<token>.ics
    path("", include("apps.oncall.urls")),
]
# Every operation under /api/ answers with and without its trailing slash; "/" is canonical.
either_form(urlpatterns)
# Any other path under /api/ is the API's JSON 404 (last: after every real route).
urlpatterns.append(re_path(r"^api/", api_not_found, name="api-not-found"))
# Django's own 400/404/500 pages are JSON under /api/ (apps/core/api/routing.py).
handler400 = "apps.core.api.routing.handler400"
handler404 = "apps.core.api.routing.handler404"
handler403 = "apps.core.refusals.permission_denied"  # the admin's styled "why you can't see this" page
handler500 = "apps.core.api.routing.handler500"
