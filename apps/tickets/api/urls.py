from rest_framework.routers import SimpleRouter

from .sla import BusinessCalendarViewSet, SlaPolicyViewSet
from .views import TicketViewSet

router = SimpleRouter()
router.register("tickets", TicketViewSet, basename="ticket")
router.register("sla-policies", SlaPolicyViewSet, basename="slapolicy")
router.register("business-calendars", BusinessCalendarViewSet, basename="businesscalendar")

urlpatterns = router.urls
