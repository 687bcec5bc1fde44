from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import FeedTokenViewSet, LayerViewSet, OnCallNowView, OverrideViewSet, ScheduleViewSet

router = SimpleRouter()
router.register("oncall/schedules", ScheduleViewSet, basename="oncall-schedule")
router.register("oncall/layers", LayerViewSet, basename="oncall-layer")
router.register("oncall/overrides", OverrideViewSet, basename="oncall-override")
router.register("oncall/feeds", FeedTokenViewSet, basename="oncall-feed")

urlpatterns = [
    path("oncall/now", OnCallNowView.as_view(), name="oncall-now"),
    *router.urls,
]
