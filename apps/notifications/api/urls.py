from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ChannelConfigViewSet, NotificationViewSet, PreferenceViewSet, TeamNotifyView

router = SimpleRouter()
router.register("notifications/preferences", PreferenceViewSet, basename="notification-preference")
router.register("notifications/channels", ChannelConfigViewSet, basename="notification-channel")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [path("notifications/team", TeamNotifyView.as_view(), name="notification-team"), *router.urls]
