from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import EndpointViewSet, HealthSummaryView, OperationsStatusView, PingView, ServiceHealthCheckView, TrendRuleViewSet

router = SimpleRouter()
router.register("monitoring/endpoints", EndpointViewSet, basename="endpoint")
router.register("monitoring/trend-rules", TrendRuleViewSet, basename="trendrule")

urlpatterns = [
    path("monitoring/health", HealthSummaryView.as_view(), name="monitoring-health"),
    path("monitoring/health-check", ServiceHealthCheckView.as_view(), name="monitoring-health-check"),
    path("operations/status", OperationsStatusView.as_view(), name="operations-status"),
    path("monitoring/ping/<uuid:ping_id>", PingView.as_view(), {"kind": "success"}, name="api-ping"),
    path("monitoring/ping/<uuid:ping_id>/fail", PingView.as_view(), {"kind": "fail"}, name="api-ping-fail"),
    path("monitoring/ping/<uuid:ping_id>/start", PingView.as_view(), {"kind": "start"}, name="api-ping-start"),
    *router.urls,
]
