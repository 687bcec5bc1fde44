"""Heartbeat push URLs, healthchecks.io style. Include at the site root:
`path("", include("apps.monitoring.urls"))` in config/urls.py (also served under /api/v1/monitoring/ping/)."""

from django.urls import path

from .views import ping_view

urlpatterns = [
    path("ping/<uuid:ping_id>", ping_view, {"kind": "success"}, name="monitoring-ping"),
    path("ping/<uuid:ping_id>/fail", ping_view, {"kind": "fail"}, name="monitoring-ping-fail"),
    path("ping/<uuid:ping_id>/start", ping_view, {"kind": "start"}, name="monitoring-ping-start"),
]
