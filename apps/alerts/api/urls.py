from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    AlertRuleViewSet,
    AlertSubscriptionViewSet,
    AlertViewSet,
    EscalationPolicyViewSet,
    IngestTokenViewSet,
    InhibitRuleViewSet,
    RunbookRequestViewSet,
    SilenceViewSet,
    TenantTimelineView,
)


class Router(SimpleRouter):
    """SimpleRouter whose list path also takes PUT for a viewset with `replace_all` (seed 002:
    `PUT /api/v1/alerts/subscriptions` replaces the caller's whole set)."""

    routes = [SimpleRouter.routes[0]._replace(mapping={**SimpleRouter.routes[0].mapping, "put": "replace_all"}), *SimpleRouter.routes[1:]]


router = Router()  # both slash forms answer (config/urls.py: either_form)
# Sub-resources first: "alerts/<pk>" would otherwise swallow "alerts/rules".
router.register("alerts/rules", AlertRuleViewSet, basename="alertrule")
router.register("alerts/subscriptions", AlertSubscriptionViewSet, basename="alertsubscription")
router.register("alerts/silences", SilenceViewSet, basename="silence")
router.register("alerts/inhibit-rules", InhibitRuleViewSet, basename="inhibitrule")
router.register("alerts/escalation-policies", EscalationPolicyViewSet, basename="escalationpolicy")
router.register("alerts/ingest-tokens", IngestTokenViewSet, basename="ingesttoken")
router.register("alerts/runbooks", RunbookRequestViewSet, basename="runbookrequest")
router.register("alerts", AlertViewSet, basename="alert")

# the ingestion URLs are in ingest_urls.py, first in the root URLconf (config/urls.py)
urlpatterns = [
    # any string: an unknown or malformed slug is the view's JSON 404, not Django's HTML one
    path("tenants/<str:slug>/timeline", TenantTimelineView.as_view(), name="tenant-timeline"),
    *router.urls,
]
