from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.views import health_view, home, metrics_view, switch_organization

admin.site.site_header = "opsportal"
admin.site.site_title = "opsportal"
admin.site.index_title = "Operations"
# Bulk delete bypasses services; every delete goes through a ModelAdmin's delete_model.
admin.site.disable_action("delete_selected")
if settings.PORTAL_ADMIN_REQUIRE_OTP:
    from django_otp.admin import OTPAdminSite

    admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", home, name="home"),
    path("admin/switch-organization/", switch_organization, name="switch-organization"),
    path("admin/timeline/", include("apps.dashboard.urls")),  # tenant timeline pages (apps/dashboard/views.py)
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("health/", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    # heartbeat pings (healthchecks.io style): /ping/<uuid>, /ping/<uuid>/fail, /ping/<uuid>/start
    path("", include("apps.monitoring.urls")),
]
