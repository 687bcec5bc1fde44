"""The ingestion URLs (under /api/v1/): machine traffic, many requests a second. The root
URLconf (config/urls.py) lists them first, so resolving them does not walk every other route."""

from django.urls import path

from .views import AlertmanagerWebhookView, BulkIngestView

urlpatterns = [
    path("alerts/ingest/alertmanager", AlertmanagerWebhookView.as_view(), name="alert-ingest-alertmanager"),
    path("alerts/ingest", BulkIngestView.as_view(), name="alert-ingest"),
]
