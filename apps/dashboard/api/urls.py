from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import AccountHealthViewSet, DashboardSummaryView, KpiCheckpointViewSet, KpiTargetViewSet

router = SimpleRouter()  # both slash forms answer (config/urls.py: either_form)
router.register("dashboard/health", AccountHealthViewSet, basename="accounthealth")
router.register("dashboard/kpi-checkpoints", KpiCheckpointViewSet, basename="kpicheckpoint")
router.register("dashboard/kpi-targets", KpiTargetViewSet, basename="kpitarget")

urlpatterns = [
    path("dashboard/summary", DashboardSummaryView.as_view(), name="dashboard-summary"),
    *router.urls,
]
